// The `tsrun` image commands as people use them, against a real registry on 127.0.0.1:
// pull (with its line-per-event progress when not on a terminal), images, image inspect,
// login/logout with htpasswd, save/rmi/prune/load.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from './helpers/clients.js';
import { htpasswdLine, push, sh, startRegistry, stopRegistry, which, type Registry } from './helpers/registry.js';

const TSRUN = join(REPO_ROOT, 'dist/bin/tsrun');
const missing = ['docker-registry', 'skopeo', 'perl'].filter((c) => !which(c));
const skip = missing.length ? `missing ${missing.join(', ')}` : !existsSync(TSRUN) ? 'dist/bin/tsrun is not built (npm run build)' : null;
if (skip) console.log(`engine-cli: skipped: ${skip}`);

function tsrun(root: string, args: string[], stdin?: string): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    const p = spawn(TSRUN, ['--root', root, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (c: Buffer) => (out += c.toString()));
    p.stderr.on('data', (c: Buffer) => (err += c.toString()));
    p.stdin.end(stdin ?? '');
    p.on('close', (code) => resolve({ code: code ?? -1, out, err }));
  });
}

describe.skipIf(!!skip)('tsrun image commands', () => {
  const work = mkdtempSync(join(tmpdir(), 'tsrun-engine-'));
  const root = join(work, 'store');
  let open: Registry;
  let locked: Registry;
  beforeAll(async () => {
    sh(join(REPO_ROOT, 'images/busybox/oci-layout.sh'), [join(work, 'bb')]);
    const pw = join(work, 'htpasswd');
    writeFileSync(pw, `${htpasswdLine('alice', 's3cret')}\n`);
    open = await startRegistry(join(work, 'reg-open'));
    locked = await startRegistry(join(work, 'reg-locked'), `auth:\n  htpasswd:\n    realm: tsrun-test\n    path: ${pw}\n`);
    await push(join(work, 'bb/oci'), 'latest', `${open.host}/tools/busybox:1`);
    await push(join(work, 'bb/oci'), 'latest', `${locked.host}/private/busybox:1`, { creds: 'alice:s3cret' });
  }, 120_000);
  afterAll(async () => {
    await stopRegistry(open);
    await stopRegistry(locked);
    rmSync(work, { recursive: true, force: true });
  });

  it('pulls with one progress line per event, lists and inspects the image', async () => {
    const ref = `${open.host}/tools/busybox:1`;
    const r = await tsrun(root, ['pull', ref]);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/layer [0-9a-f]{12}: pulling/);
    expect(r.out).toMatch(/layer [0-9a-f]{12}: done \(\d+ files/);
    expect(r.out).toContain(`tagged ${ref}`);
    expect(r.out).not.toContain('\x1b['); // no cursor movement when not on a terminal
    const again = await tsrun(root, ['pull', ref]);
    expect(again.out).toMatch(/already present/);
    const imgs = await tsrun(root, ['images']);
    expect(imgs.out).toContain(ref);
    expect(imgs.out).toContain('linux/amd64');
    const info = JSON.parse((await tsrun(root, ['image', 'inspect', ref])).out);
    expect(info[0].layers[0].unpacked).toBe(true);
    expect(info[0].config.config.Cmd).toEqual(['sh']);
  });

  it('needs credentials for a locked registry: login saves them (0600), logout forgets them', async () => {
    const ref = `${locked.host}/private/busybox:1`;
    const denied = await tsrun(root, ['pull', ref]);
    expect(denied.code).toBe(1);
    expect(denied.err).toMatch(/401|unauthorized|authentication/i);
    const login = await tsrun(root, ['login', '-u', 'alice', '--password-stdin', locked.host], 's3cret\n');
    expect(login.code, login.err).toBe(0);
    expect((await tsrun(root, ['pull', '-q', ref])).out).toMatch(/^sha256:[0-9a-f]{64}\n$/);
    expect((await tsrun(root, ['logout', locked.host])).out).toContain('removed');
    expect((await tsrun(root, ['pull', ref])).code).toBe(1);
  });

  it('saves, removes, prunes and loads back the same image', async () => {
    const ref = `${open.host}/tools/busybox:1`;
    const before = JSON.parse((await tsrun(root, ['images', '--format', 'json'])).out).find((x: { ref: string }) => x.ref === ref);
    const archive = join(work, 'saved.tar');
    expect((await tsrun(root, ['save', '-o', archive, ref])).code).toBe(0);
    expect((await tsrun(root, ['rmi', ref])).out).toContain(`untagged: ${ref}`);
    expect((await tsrun(root, ['rmi', `${locked.host}/private/busybox:1`])).code).toBe(0);
    const pr = await tsrun(root, ['image', 'prune', '-a']);
    expect(pr.out).toMatch(/removed \d+ blob\(s\) and 1 layer\(s\)/);
    expect(readdirSync(join(root, 'layers'))).toEqual([]);
    expect((await tsrun(root, ['load', '-i', archive])).code).toBe(0);
    const after = JSON.parse((await tsrun(root, ['images', '--format', 'json'])).out).find((x: { ref: string }) => x.ref === ref);
    expect(after.digest).toBe(before.digest);
  });

  it('says clearly what is wrong with a bad reference or an unknown image', async () => {
    const bad = await tsrun(root, ['pull', 'bad::ref']);
    expect(bad.code).toBe(1);
    expect(bad.err).toContain('invalid reference "bad::ref"');
    const upper = await tsrun(root, ['pull', 'Busybox']);
    expect(upper.code).toBe(1);
    expect(upper.err).toMatch(/must be lowercase/);
    const none = await tsrun(root, ['image', 'inspect', 'nosuch/image']);
    expect(none.code).toBe(1);
    expect(none.err).toContain('no such image');
  });
});
