// The image store's on-disk layout, the one contract every image module shares.
// Only validated digests ever become path components.
//
//   <root>/                       default /var/lib/tsrun (mode 0700)
//     blobs/sha256/<hex>          manifests, indexes, configs and compressed layers, verified by
//                                 digest while written, renamed into place (never partial)
//     layers/<diffid-hex>/        one unpacked layer, shared by every image and container using it
//       root/                     the layer's files, in overlayfs form (whiteouts are 0:0 char
//                                 devices, opaque dirs carry trusted.overlay.opaque=y); an overlay lowerdir
//       layer.json                {"diffId","compressedDigest"?,"size","files"}: written last, its
//                                 presence is what makes the layer complete
//     repositories.json           {"<canonical ref>": {"digest": "sha256:…", "platform"?}} (atomic)
//     containers/<id>/            per-container overlay: upper/, work/, merged/
//     tmp/                        downloads and unpacks in progress (tmp-<random>); anything here
//                                 at start-up is garbage from a crash and may be removed
//     locks/                      per-digest and store-wide lock files
import { join } from 'node:path';
import { TsrunError } from '../../util/errors.js';

export const DEFAULT_IMAGE_ROOT = '/var/lib/tsrun';

const DIGEST_RE = /^sha256:([a-f0-9]{64})$/;

/** The hex of a sha256 digest, or an error: the only way a digest reaches a path. */
export function digestHex(digest: string): string {
  const m = DIGEST_RE.exec(digest);
  if (!m) throw new TsrunError('ERR_INVALID_ARGUMENT', `invalid digest "${digest}": expected sha256:<64 hex digits>`);
  return m[1]!;
}

export class StoreLayout {
  constructor(readonly root: string = DEFAULT_IMAGE_ROOT) {}

  blob(digest: string): string {
    return join(this.root, 'blobs', 'sha256', digestHex(digest));
  }
  layerDir(diffId: string): string {
    return join(this.root, 'layers', digestHex(diffId));
  }
  layerRoot(diffId: string): string {
    return join(this.layerDir(diffId), 'root');
  }
  layerMeta(diffId: string): string {
    return join(this.layerDir(diffId), 'layer.json');
  }
  repositories(): string {
    return join(this.root, 'repositories.json');
  }
  container(id: string): string {
    return join(this.root, 'containers', id);
  }
  tmp(): string {
    return join(this.root, 'tmp');
  }
  locks(): string {
    return join(this.root, 'locks');
  }
}
