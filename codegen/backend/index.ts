// The TypeScript back end of the FIDL compiler (IR -> src/gen/*.ts).
export { GeneratedFile, GenerateOptions, generateTypeScript } from './typescript';
export * from './names';
