// The TypeScript back end of the FIDL compiler (IR -> src/gen/*.ts).
export { generateTypeScript } from './typescript';
export type { GeneratedFile, GenerateOptions } from './typescript';
export * from './names';
