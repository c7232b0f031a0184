// Tests run with the logger at 'error' unless STARNIX_PAGER_LOG says otherwise: refusals the
// tests provoke on purpose would otherwise fill the output with expected warnings.
process.env.STARNIX_PAGER_LOG = process.env.STARNIX_PAGER_LOG || 'error';
