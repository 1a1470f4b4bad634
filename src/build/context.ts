// The build context: the directory COPY and ADD read from, with .dockerignore honoured
// (@balena/dockerignore: docker's own matching rules, negations included), sources resolved
// and globbed inside it, and a content digest of what a step reads (the layer cache key).
//
// The context is the user's, but a symlink in it must never make a build read outside it: a
// source whose real path leaves the context is refused ("forbidden path outside the build
// context", docker's words); inside a copied tree symlinks are copied as links, never followed.
import { createHash } from 'node:crypto';
import { closeSync, constants, fstatSync, lstatSync, openSync, readdirSync, readFileSync, readlinkSync, readSync, realpathSync } from 'node:fs';
import { join, posix, relative, sep } from 'node:path';
import dockerignore, { type Ignore } from '@balena/dockerignore';

// A CommonJS module whose typings say `export default`: its function is the module itself.
const ignore = ((dockerignore as unknown as { default?: typeof dockerignore }).default ?? dockerignore) as unknown as () => Ignore;
import { TsrunError } from '../util/errors.js';

export interface Source {
  /** Absolute host path, inside the context. */
  hostPath: string;
  /** Path relative to the context ("." for the context itself). */
  rel: string;
  isDir: boolean;
}

const GLOB = /[*?[]/;

function globRegExp(pattern: string): RegExp {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 1);
      if (end < 0) re += '\\[';
      else {
        re += `[${pattern
          .slice(i + 1, end)
          .replace(/^!/, '^')
          .replace(/\\/g, '\\\\')}]`;
        i = end;
      }
    } else re += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

export class BuildContext {
  readonly root: string;
  private readonly ig: Ignore;

  constructor(dir: string) {
    try {
      this.root = realpathSync(dir);
      if (!lstatSync(this.root).isDirectory()) throw new Error('not a directory');
    } catch (e) {
      throw new TsrunError('ERR_INVALID_ARGUMENT', `build context ${dir}: ${(e as Error).message}`);
    }
    this.ig = ignore();
    try {
      const text = readFileSync(join(this.root, '.dockerignore'), 'utf8');
      this.ig.add(
        text
          .split('\n')
          .map((l) => l.trim())
          .filter((l) => l && !l.startsWith('#')),
      );
    } catch {
      /* no .dockerignore */
    }
  }

  /** Whether .dockerignore leaves `rel` (relative to the context) out. */
  ignored(rel: string): boolean {
    return rel !== '.' && rel !== '' && this.ig.ignores(rel.split(sep).join('/'));
  }

  /** For copyIn's filter: false for what .dockerignore leaves out. */
  readonly keep = (hostPath: string): boolean => !this.ignored(relative(this.root, hostPath));

  private inside(real: string): boolean {
    return real === this.root || real.startsWith(`${this.root}/`);
  }

  /** One COPY/ADD source (a path or a glob) -> what it names, in the context, not ignored. */
  resolve(pattern: string, line: number): Source[] {
    const clean = posix.normalize(`/${pattern}`).slice(1) || '.';
    if (clean.startsWith('..')) throw this.outside(pattern, line);
    if (!GLOB.test(clean)) return [this.one(clean, pattern, line)];
    const parts = clean.split('/');
    let found: string[] = ['.'];
    for (const part of parts) {
      const next: string[] = [];
      for (const base of found) {
        if (!GLOB.test(part)) {
          next.push(base === '.' ? part : `${base}/${part}`);
          continue;
        }
        const re = globRegExp(part);
        let names: string[] = [];
        try {
          names = readdirSync(join(this.root, base)).sort();
        } catch {
          continue;
        }
        for (const n of names) if (re.test(n)) next.push(base === '.' ? n : `${base}/${n}`);
      }
      found = next;
    }
    const hits = found
      .filter((r) => !this.ignored(r))
      .flatMap((r) => {
        try {
          return [this.one(r, pattern, line)];
        } catch {
          return [];
        }
      });
    if (!hits.length) throw this.notFound(pattern, line);
    return hits;
  }

  private one(rel: string, pattern: string, line: number): Source {
    const hostPath = join(this.root, rel);
    let real: string;
    try {
      real = realpathSync(hostPath);
    } catch {
      throw this.notFound(pattern, line);
    }
    if (!this.inside(real)) throw this.outside(pattern, line);
    if (this.ignored(rel)) throw this.notFound(pattern, line);
    // Copied under its own name; a symlink source is followed (inside the context only).
    return { hostPath, rel, isDir: lstatSync(real).isDirectory() };
  }

  private notFound(pattern: string, line: number): TsrunError {
    return new TsrunError(
      'ERR_INVALID_ARGUMENT',
      `Containerfile line ${line}: "${pattern}": no such file or directory in the build context (or excluded by .dockerignore)`,
    );
  }

  private outside(pattern: string, line: number): TsrunError {
    return new TsrunError('ERR_INVALID_ARGUMENT', `Containerfile line ${line}: "${pattern}": forbidden path outside the build context`, {
      hint: 'COPY and ADD read only from the context: a symlink in it may not lead out of it',
    });
  }

  /**
   * sha256 over what copying `sources` reads: paths, types, modes, link targets and file
   * contents (ignored entries left out). Owners and mtimes are not in it (docker's cache key).
   */
  digest(sources: Source[]): string {
    const h = createHash('sha256');
    const buf = Buffer.allocUnsafe(1 << 16);
    const walk = (hostPath: string, rel: string): void => {
      const st = lstatSync(hostPath);
      h.update(`${rel}\0${st.mode}\0`);
      if (st.isSymbolicLink()) h.update(`${readlinkSync(hostPath)}\0`);
      else if (st.isFile()) {
        const fd = openSync(hostPath, constants.O_RDONLY | constants.O_NOFOLLOW);
        try {
          let left = fstatSync(fd).size;
          h.update(`${left}\0`);
          while (left > 0) {
            const n = readSync(fd, buf, 0, Math.min(buf.length, left), null);
            if (n <= 0) break;
            h.update(buf.subarray(0, n));
            left -= n;
          }
        } finally {
          closeSync(fd);
        }
      } else if (st.isDirectory()) {
        for (const n of readdirSync(hostPath).sort()) {
          const child = join(hostPath, n);
          if (this.keep(child)) walk(child, `${rel}/${n}`);
        }
      }
    };
    for (const s of sources) walk(s.hostPath, s.rel);
    return `sha256:${h.digest('hex')}`;
  }
}
