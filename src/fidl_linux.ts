// Wires the FIDL runtime to the Linux transport: every decoded handle is checked against the
// zx object type and rights its field declares, by what kind of fd it is (see
// handleObjectCheck: a VMO must be a memfd, regular file or block device, a channel a
// SEQPACKET socket). The codec itself stays free of native code; importing this module once
// (the server and the client library do) installs the check for the whole process.
import { setDefaultHandleCheck } from './fidl';
import { handleObjectCheck } from './transport/handle_info';

setDefaultHandleCheck(handleObjectCheck);
