// Soak: the fault suite with 1000 clients killed mid-fault (unless KILL_ITERATIONS says otherwise).
process.env.KILL_ITERATIONS = process.env.KILL_ITERATIONS ?? '1000';
// eslint-disable-next-line @typescript-eslint/no-require-imports
require('../hostile/faults.test');
