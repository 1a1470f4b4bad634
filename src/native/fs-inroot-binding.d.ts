// The addon's fd-based in-root filesystem operations (native/fs_inroot.cc).
export interface FsInRootBinding {}
