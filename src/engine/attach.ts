// The attach client of the monitor's socket (framing in native/monitor_protocol.h): the
// container's output from now on, our input to its stdin, resizes; the exit status last.
import { closeSync, constants, openSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { ATTACH, ATTACH_HEADER, MONITOR_FILES } from '../native/monitor-protocol.js';
import { TsrunError } from '../util/errors.js';

export interface AttachSession {
  /** Resolves with the exit status, or undefined when the connection ended without one. */
  done: Promise<number | undefined>;
  sendStdin(data: Buffer): void;
  closeStdin(): void;
  resize(rows: number, cols: number): void;
  close(): void;
}

function frame(type: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const h = Buffer.alloc(ATTACH_HEADER);
  h.writeUInt8(type, 0);
  h.writeUInt32LE(payload.length, 1);
  return Buffer.concat([h, payload]);
}

export async function attachMonitor(dir: string, out: (stream: 'stdout' | 'stderr', data: Buffer) => void): Promise<AttachSession> {
  // Through a dir fd: the socket's path may be longer than sun_path allows.
  const dirFd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  let sock: Socket;
  try {
    sock = await new Promise<Socket>((res, rej) => {
      const s = connect(`/proc/self/fd/${dirFd}/${MONITOR_FILES.attach}`);
      s.once('connect', () => res(s));
      s.once('error', rej);
    });
  } catch (e) {
    throw new TsrunError('ERR_CONTAINER_NOT_RUNNING', `cannot attach: the container's monitor does not answer (${(e as Error).message})`);
  } finally {
    closeSync(dirFd);
  }
  let buf = Buffer.alloc(0);
  let status: number | undefined;
  const done = new Promise<number | undefined>((res) => {
    sock.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= ATTACH_HEADER) {
        const len = buf.readUInt32LE(1);
        if (buf.length < ATTACH_HEADER + len) break;
        const type = buf.readUInt8(0);
        const payload = buf.subarray(ATTACH_HEADER, ATTACH_HEADER + len);
        if (type === ATTACH.STDOUT) out('stdout', payload);
        else if (type === ATTACH.STDERR) out('stderr', payload);
        else if (type === ATTACH.EXIT && len === 4) status = payload.readInt32LE(0);
        buf = buf.subarray(ATTACH_HEADER + len);
      }
    });
    sock.on('close', () => res(status));
    sock.on('error', () => res(status));
  });
  return {
    done,
    sendStdin: (data) => {
      for (let i = 0; i < data.length; i += 65536) sock.write(frame(ATTACH.STDIN, data.subarray(i, i + 65536)));
    },
    closeStdin: () => sock.write(frame(ATTACH.STDIN_EOF)),
    resize: (rows, cols) => {
      const p = Buffer.alloc(4);
      p.writeUInt16LE(rows, 0);
      p.writeUInt16LE(cols, 2);
      sock.write(frame(ATTACH.RESIZE, p));
    },
    close: () => sock.destroy(),
  };
}
