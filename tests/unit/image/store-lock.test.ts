import { describe, expect, it } from 'vitest';
import { ImageStore } from '../../../src/image/store/store.js';
import { tempDir } from '../../helpers/tmp-dir.js';

describe('ImageStore.withLock', () => {
  it('serialises callers in the same process (file locks alone would not)', async () => {
    const store = new ImageStore(tempDir('lock-'));
    const events: string[] = [];
    const job = (n: number) =>
      store.withLock('repositories', async () => {
        events.push(`in${n}`);
        await new Promise((r) => setTimeout(r, 20));
        events.push(`out${n}`);
      });
    await Promise.all([job(1), job(2), job(3)]);
    expect(events).toEqual(['in1', 'out1', 'in2', 'out2', 'in3', 'out3']);
  });

  it('releases the queue when the holder throws', async () => {
    const store = new ImageStore(tempDir('lock-'));
    await expect(store.withLock('x', () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(await store.withLock('x', () => 7)).toBe(7);
  });
});
