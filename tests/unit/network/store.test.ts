import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { NetworkStore } from '../../../src/network/store.js';
import { tempDir } from '../../helpers/tmp-dir.js';

function store() {
  const d = tempDir('tsrun-netstore-');
  return { d, s: new NetworkStore(join(d, 'root'), join(d, 'run'), join(d, 'ipam')) };
}

describe('the network store (conflists under the root)', () => {
  it('always has the default network, written on first use', () => {
    const { d, s } = store();
    expect(s.names()).toEqual(['tsrun']);
    const n = s.need('tsrun');
    expect(n).toMatchObject({ name: 'tsrun', subnet: '10.87.0.0/16', bridge: 'tsrun0', dns: false });
    const onDisk = JSON.parse(readFileSync(join(d, 'root', 'networks', 'tsrun.conflist'), 'utf8'));
    expect(onDisk.plugins[0].ipam.dataDir).toBe(join(d, 'ipam'));
  });
  it('create picks a free subnet (not the host’s, not another network’s), and reads back the same', () => {
    const { s } = store();
    const a = s.create({ name: 'a' }, ['10.86.0.0/24']);
    const b = s.create({ name: 'b' }, ['10.86.0.0/24']);
    expect(a.subnet).toBe('10.86.1.0/24');
    expect(b.subnet).toBe('10.86.2.0/24');
    expect(s.need('a')).toMatchObject({ name: 'a', subnet: '10.86.1.0/24', gateway: '10.86.1.1', internal: false, dns: true });
    expect(s.names()).toEqual(['a', 'b', 'tsrun']);
  });
  it('refuses a second network of a name or an overlapping subnet; remove forgets it', () => {
    const { s } = store();
    s.create({ name: 'x', subnet: '10.123.0.0/16', internal: true }, []);
    expect(() => s.create({ name: 'x' }, [])).toThrow(/already exists/);
    expect(() => s.create({ name: 'y', subnet: '10.123.4.0/24' }, [])).toThrow(/overlaps 10.123.0.0\/16/);
    expect(s.need('x').internal).toBe(true);
    s.remove('x');
    expect(s.get('x')).toBeUndefined();
    expect(() => s.need('x')).toThrow(/no such network: x/);
  });
  it('a damaged conflist is a clear error naming the file and the fix', () => {
    const { d, s } = store();
    s.create({ name: 'bad', subnet: '10.124.0.0/24' }, []);
    writeFileSync(join(d, 'root', 'networks', 'bad.conflist'), '{not json');
    expect(() => s.need('bad')).toThrow(/bad.conflist is not JSON/);
  });
});
