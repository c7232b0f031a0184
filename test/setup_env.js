// Tests run with the logger at 'error' unless STARNIX_PAGER_LOG says otherwise: refusals the
// tests provoke on purpose would otherwise fill the output with expected warnings.
process.env.STARNIX_PAGER_LOG = process.env.STARNIX_PAGER_LOG || 'error';

// Node 20 defines Symbol.dispose / Symbol.asyncDispose (as Symbol.for('nodejs.dispose') and
// 'nodejs.asyncDispose') in its main context only; jest runs tests in a vm context without them,
// where `using` and the library's [Symbol.dispose]() methods would not meet. Define them the way
// Node does.
for (const name of ['dispose', 'asyncDispose']) {
  if (typeof Symbol[name] !== 'symbol') Object.defineProperty(Symbol, name, { value: Symbol.for(`nodejs.${name}`) });
}
