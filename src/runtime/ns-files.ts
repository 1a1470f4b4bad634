import type { NamespaceType } from '../spec/types.js';

/** The /proc/<pid>/ns/ file of each namespace type. */
export const NS_FILE: Record<NamespaceType, string> = {
  mount: 'mnt',
  network: 'net',
  pid: 'pid',
  ipc: 'ipc',
  uts: 'uts',
  user: 'user',
  cgroup: 'cgroup',
  time: 'time',
};
