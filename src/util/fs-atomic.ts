// Atomic file replacement: unique temp file in the same directory, fsync, rename.
import { closeSync, fsyncSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

// pid + a per-process counter is unique among live writers (and 'wx' refuses a collision);
// no node:crypto, which costs every CLI start a few milliseconds to load.
let seq = 0;

/**
 * `durable`: fsync before the rename (survives a power loss). Without it the write is still
 * atomic for every reader and survives the writer being killed.
 */
export function writeFileAtomic(path: string, data: string | Buffer, mode = 0o600, durable = true): void {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${Date.now()}.${++seq}.tmp`);
  const fd = openSync(tmp, 'wx', mode);
  try {
    writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
    if (durable) fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    unlinkSync(tmp);
    throw e;
  }
  closeSync(fd);
  renameSync(tmp, path);
}
