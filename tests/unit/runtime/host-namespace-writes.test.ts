import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { checkHostNamespaceWrites } from '../../../src/runtime/host-namespace-writes.js';
import type { Spec } from '../../../src/spec/types.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A fake /proc/self/ns with one file per type; "joined" paths point at them or elsewhere. */
function fakeProcSelf(): string {
  const d = mkdtempSync(path.join(os.tmpdir(), 'sysctl-ns-'));
  dirs.push(d);
  mkdirSync(path.join(d, 'ns'));
  for (const f of ['net', 'uts', 'ipc']) writeFileSync(path.join(d, 'ns', f), f);
  writeFileSync(path.join(d, 'other-net'), 'x');
  return d;
}

const spec = (namespaces: any[], sysctl: Record<string, string>): Spec => ({ ociVersion: '1.2.0', linux: { namespaces, sysctl } }) as Spec;

describe('sysctls against the namespaces in force', () => {
  it('refuses a sysctl whose namespace is joined by a path that is the runtime’s own', () => {
    const self = fakeProcSelf();
    expect(() => checkHostNamespaceWrites(spec([{ type: 'network', path: path.join(self, 'ns/net') }], { 'net.ipv4.ip_forward': '1' }), self)).toThrow(
      'sysctl "net.ipv4.ip_forward" not allowed in host network namespace',
    );
    expect(() => checkHostNamespaceWrites(spec([{ type: 'ipc', path: path.join(self, 'ns/ipc') }], { 'kernel.shmmax': '1' }), self)).toThrow(
      'host ipc namespace',
    );
    expect(() => checkHostNamespaceWrites(spec([{ type: 'uts', path: path.join(self, 'ns/uts') }], { 'kernel.domainname': 'x' }), self)).toThrow(
      'host uts namespace',
    );
  });

  it('allows a new namespace, or one joined by another path', () => {
    const self = fakeProcSelf();
    expect(() => checkHostNamespaceWrites(spec([{ type: 'network' }], { 'net.ipv4.ip_forward': '1' }), self)).not.toThrow();
    expect(() => checkHostNamespaceWrites(spec([{ type: 'network', path: path.join(self, 'other-net') }], { 'net.ipv4.ip_forward': '1' }), self)).not.toThrow();
  });
});

describe('hostname and domainname against the uts namespace in force', () => {
  it('refuses them in the runtime’s own uts namespace joined by path, allows another one', () => {
    const self = fakeProcSelf();
    const own = { ...spec([{ type: 'uts', path: path.join(self, 'ns/uts') }], {}), hostname: 'h' } as Spec;
    expect(() => checkHostNamespaceWrites(own, self)).toThrow('"hostname" not allowed in the host uts namespace');
    const other = { ...spec([{ type: 'uts', path: path.join(self, 'other-net') }], {}), domainname: 'd' } as Spec;
    expect(() => checkHostNamespaceWrites(other, self)).not.toThrow();
  });
});
