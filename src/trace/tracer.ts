// `--trace FILE`: the seed's trace events (category `starnix_pager`) in a Perfetto trace.
//
//   file_register          instant on the pager's track, per RegisterFile that succeeded
//   signal_zero_children   instant on the pager's track when a file's last holder goes
//   vmo_read               slice on a pager thread's track, per window that thread filled
//                          (recorded by the native thread into its own ring, drained from here)
//   CreatePager, RegisterFile, AttachMapping   slices on the "FIDL server" track, with status
//   counters               bytes supplied, faults, files registered, memfd pages resident
//
// Timestamps are CLOCK_BOOTTIME (Perfetto's default trace clock; the first packet's ClockSnapshot
// says so, with MONOTONIC and REALTIME readings taken beside it). The pager threads stamp their
// own records with it; JS events take it from the addon.
import { logger } from '../log';
import { BuiltinClock, CounterDescriptor_Unit, TrackEvent_Type, TracePacket_SequenceFlags } from '../gen/perfetto/perfetto_trace_pb';
import type { NativePager, PagerStats, VmoReadRecord } from '../pager/native_pager';
import { traceClockNs } from '../pager/native_pager';
import { PacketInit, PerfettoTraceFile } from './trace_file';

export const CATEGORY = 'starnix_pager';

/** How often the pager threads' rings are drained and the counters sampled. */
const FLUSH_INTERVAL_MS = 100;
/** memfd pages resident costs an fstat per registered file: sampled every this many flushes (1 s). */
const RESIDENT_EVERY = 10;

type Annotation = { name: string; value: { case: 'boolValue'; value: boolean } | { case: 'uintValue'; value: bigint } | { case: 'intValue'; value: bigint } | { case: 'stringValue'; value: string } };

function ann(name: string, v: string | number | bigint | boolean): Annotation {
  if (typeof v === 'string') return { name, value: { case: 'stringValue', value: v } };
  if (typeof v === 'boolean') return { name, value: { case: 'boolValue', value: v } };
  if (typeof v === 'number' && v < 0) return { name, value: { case: 'intValue', value: BigInt(v) } };
  return { name, value: { case: 'uintValue', value: BigInt(v) } };
}

interface TracedPager {
  id: number;
  pager: NativePager;
  track: bigint;
  files: Map<number, string>; // inode -> name, kept after the file is forgotten (records may name it later)
  threadTracks: Map<number, bigint>;
  clients: Map<number, number>; // attachment id -> client pid
  dropped: number; // records its threads' rings had no room for
}

/** What one connection's code needs of the tracer: FIDL method spans naming the connection and client. */
export class ConnectionTrace {
  constructor(readonly tracer: ServiceTracer, readonly channel: string, readonly peer: { pid: number; uid: number }) {}

  /** Begins a FIDL method span; call the result with the outcome (a status name) when it is answered. */
  span(method: string): (status: string) => void {
    return this.tracer.span(method, this.channel, this.peer);
  }

  /** The same client on another channel (a Pager channel made through a Manager connection). */
  derive(channel: string): ConnectionTrace {
    return new ConnectionTrace(this.tracer, channel, this.peer);
  }
}

export class ServiceTracer {
  private readonly file: PerfettoTraceFile;
  private readonly pid = process.pid;
  private readonly processTrack: bigint;
  private readonly fidlTrack: bigint;
  private readonly counters: Record<'bytesSupplied' | 'faults' | 'files' | 'residentPages', { track: bigint; last: bigint | null }>;
  private nextTrack = 1n;
  private readonly pagers = new Map<number, TracedPager>();
  /** Totals of pagers that stopped, so that the counters stay cumulative for the service. */
  private readonly stoppedTotals = { bytesSupplied: 0n, faults: 0n };
  private filesRegistered = 0n;
  private droppedRecords = 0;
  private flushes = 0;
  private resident = 0n;
  private readonly timer: NodeJS.Timeout;
  private closed = false;
  private closing = false;

  private constructor(file: PerfettoTraceFile) {
    this.file = file;
    this.processTrack = this.newTrack();
    this.fidlTrack = this.newTrack();
    const counter = (name: string, unit: CounterDescriptor_Unit) => {
      const track = this.newTrack();
      this.file.write([{ data: { case: 'trackDescriptor', value: { uuid: track, parentUuid: this.processTrack, name, counter: { categories: [CATEGORY], unit } } } }]);
      return { track, last: null };
    };
    const boot = traceClockNs();
    this.file.write([
      {
        timestamp: boot,
        sequenceFlags: TracePacket_SequenceFlags.SEQ_INCREMENTAL_STATE_CLEARED,
        data: { case: 'clockSnapshot', value: {
          clocks: [
            { clockId: BuiltinClock.BOOTTIME, timestamp: boot },
            { clockId: BuiltinClock.MONOTONIC, timestamp: process.hrtime.bigint() },
            { clockId: BuiltinClock.REALTIME, timestamp: BigInt(Date.now()) * 1_000_000n },
          ],
          primaryTraceClock: BuiltinClock.BOOTTIME,
        } },
      },
      { data: { case: 'trackDescriptor', value: { uuid: this.processTrack, process: { pid: this.pid, processName: 'starnix-pager' } } } },
      { data: { case: 'trackDescriptor', value: { uuid: this.fidlTrack, parentUuid: this.processTrack, name: 'FIDL server' } } },
    ]);
    this.counters = {
      bytesSupplied: counter('bytes supplied', CounterDescriptor_Unit.SIZE_BYTES),
      faults: counter('faults', CounterDescriptor_Unit.COUNT),
      files: counter('files registered', CounterDescriptor_Unit.COUNT),
      residentPages: counter('memfd pages resident', CounterDescriptor_Unit.COUNT),
    };
    this.timer = setInterval(() => this.flush(), FLUSH_INTERVAL_MS);
    this.timer.unref();
  }

  /** Creates the trace file (a one-line Error when it cannot) and starts tracing. */
  static start(path: string): ServiceTracer {
    return new ServiceTracer(PerfettoTraceFile.create(path));
  }

  get path(): string {
    return this.file.path;
  }

  private newTrack(): bigint {
    return (BigInt(this.pid) << 24n) | this.nextTrack++;
  }

  private event(ts: bigint, track: bigint, type: TrackEvent_Type, name?: string, annotations?: Annotation[]): PacketInit {
    return {
      timestamp: ts,
      data: { case: 'trackEvent', value: {
        type,
        trackUuid: track,
        ...(name !== undefined ? { categories: [CATEGORY], nameField: { case: 'name' as const, value: name } } : {}),
        ...(annotations !== undefined ? { debugAnnotations: annotations.map((a) => ({ nameField: { case: 'name' as const, value: a.name }, value: a.value })) } : {}),
      } },
    };
  }

  /** A connection's view of the tracer. */
  connection(channel: string, peer: { pid: number; uid: number }): ConnectionTrace {
    return new ConnectionTrace(this, channel, peer);
  }

  /** See ConnectionTrace.span. Both ends are written when the span ends (handlers answer at once). */
  span(method: string, channel: string, peer: { pid: number; uid: number }): (status: string) => void {
    if (this.closed) return () => undefined;
    const begin = traceClockNs();
    return (status) => {
      if (this.closed) return;
      this.file.write([
        this.event(begin, this.fidlTrack, TrackEvent_Type.SLICE_BEGIN, method, [ann('connection', channel), ann('client_pid', peer.pid), ann('client_uid', peer.uid)]),
        this.event(traceClockNs(), this.fidlTrack, TrackEvent_Type.SLICE_END, undefined, [ann('status', status)]),
      ]);
    };
  }

  pagerCreated(id: number, pager: NativePager, describe: string): void {
    if (this.closed) return;
    const track = this.newTrack();
    this.pagers.set(id, { id, pager, track, files: new Map(), threadTracks: new Map(), clients: new Map(), dropped: 0 });
    this.file.write([{ data: { case: 'trackDescriptor', value: { uuid: track, parentUuid: this.processTrack, name: `pager ${id} (${describe})` } } }]);
  }

  fileRegistered(pagerId: number, f: { name: string; inode: number; size: bigint; extents: number; created: boolean }): void {
    const p = this.pagers.get(pagerId);
    if (p === undefined || this.closed) return;
    p.files.set(f.inode, f.name);
    if (f.created) this.filesRegistered++;
    this.file.write([
      this.event(traceClockNs(), p.track, TrackEvent_Type.INSTANT, 'file_register', [
        ann('name', f.name), ann('inode', f.inode), ann('size', f.size), ann('extents', f.extents), ann('pager', pagerId), ann('new_file', f.created),
      ]),
    ]);
  }

  fileForgotten(pagerId: number, inode: number, name: string): void {
    const p = this.pagers.get(pagerId);
    if (p === undefined || this.closed) return;
    this.file.write([this.event(traceClockNs(), p.track, TrackEvent_Type.INSTANT, 'signal_zero_children', [ann('name', name), ann('inode', inode), ann('pager', pagerId)])]);
  }

  /** Remembers whose mapping an attachment is, so that its vmo_read events name the client. */
  mappingAttached(pager: NativePager, attachment: number, clientPid: number): void {
    for (const p of this.pagers.values()) if (p.pager === pager) p.clients.set(attachment, clientPid);
  }

  /** After the pager's threads stopped: its last records, then it is forgotten. */
  pagerStopped(pagerId: number): void {
    const p = this.pagers.get(pagerId);
    if (p === undefined) return;
    if (!this.closed) {
      this.drain(p);
      const s = p.pager.stats();
      this.stoppedTotals.bytesSupplied += s.bytesSupplied;
      this.stoppedTotals.faults += BigInt(s.faults);
    }
    this.droppedRecords += p.dropped;
    this.pagers.delete(pagerId);
    if (!this.closed) this.sampleCounters();
  }

  /** Drains every pager's rings and samples the counters (every FLUSH_INTERVAL_MS, and at close). */
  flush(): void {
    if (this.closed) return;
    for (const p of this.pagers.values()) this.drain(p);
    this.sampleCounters();
  }

  private drain(p: TracedPager): void {
    const packets: PacketInit[] = [];
    let dropped = 0;
    for (const thread of p.pager.drainTrace()) {
      dropped += thread.dropped;
      if (thread.records.length === 0) continue;
      let track = p.threadTracks.get(thread.index);
      if (track === undefined) {
        track = this.newTrack();
        p.threadTracks.set(thread.index, track);
        packets.push({ data: { case: 'trackDescriptor', value: { uuid: track, thread: { pid: this.pid, tid: thread.tid, threadName: `pager-${p.id}.${thread.index}` } } } });
      }
      for (const r of thread.records) packets.push(...this.vmoRead(p, track, r));
    }
    p.dropped = dropped; // counted by the rings since the pager started
    this.file.write(packets);
  }

  private vmoRead(p: TracedPager, track: bigint, r: VmoReadRecord): PacketInit[] {
    const annotations = [
      ann('file', p.files.get(r.inode) ?? `inode ${r.inode}`),
      ann('inode', r.inode),
      ann('offset', r.offset),
      ann('length', r.length),
      ann('client_pid', p.clients.get(r.attachment) ?? 0),
      ann('bytes_copied', r.bytesCopied),
      ann('bytes_zeroed', r.bytesZeroed),
      ann('pages_failed', r.poisoned ? 1 : 0),
      ann('read_ahead_cut', r.failed && !r.poisoned),
      ann('reader_waiting', r.faultWindow),
    ];
    return [
      this.event(r.beginNs, track, TrackEvent_Type.SLICE_BEGIN, 'vmo_read', annotations),
      this.event(r.endNs, track, TrackEvent_Type.SLICE_END),
    ];
  }

  private sampleCounters(): void {
    let supplied = this.stoppedTotals.bytesSupplied;
    let faults = this.stoppedTotals.faults;
    const sampleResident = this.flushes++ % RESIDENT_EVERY === 0 || this.closing;
    let resident = 0n;
    for (const p of this.pagers.values()) {
      const s: PagerStats = p.pager.stats();
      supplied += s.bytesSupplied;
      faults += BigInt(s.faults);
      if (sampleResident) resident += p.pager.residentBytes();
    }
    if (sampleResident) this.resident = resident;
    const now = traceClockNs();
    const packets: PacketInit[] = [];
    const set = (c: { track: bigint; last: bigint | null }, v: bigint) => {
      if (c.last === v) return;
      c.last = v;
      packets.push({ timestamp: now, data: { case: 'trackEvent', value: { type: TrackEvent_Type.COUNTER, trackUuid: c.track, counterValue: v } } });
    };
    set(this.counters.bytesSupplied, supplied);
    set(this.counters.faults, faults);
    set(this.counters.files, this.filesRegistered);
    set(this.counters.residentPages, this.resident / 4096n);
    this.file.write(packets);
  }

  /** Writes what is left and closes the file. Idempotent. */
  close(): void {
    if (this.closed) return;
    clearInterval(this.timer);
    this.closing = true;
    this.flush();
    this.closed = true;
    this.file.close();
    for (const p of this.pagers.values()) this.droppedRecords += p.dropped;
    if (this.droppedRecords > 0) {
      logger.warn(`trace ${this.file.path}: ${this.droppedRecords} vmo_read records were lost to full per-thread buffers`);
    }
    logger.info(`trace written to ${this.file.path}`, { bytes: this.file.bytesWritten });
  }
}
