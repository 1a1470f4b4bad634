import { describe, expect, it } from 'vitest';
import { boundPorts } from '../../../src/network/host-ports.js';

const TCP = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0
   1: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1 0000000000000000 100 0 0 10 0
   2: 0100007F:A1B2 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 3 1 0000000000000000 20 4 30 10 -1
`;
const UDP = `   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  100: 00000000:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 5 2 0000000000000000 0
`;

describe('ports held on the host (/proc/net tables)', () => {
  it('TCP: listeners only (a connection’s local port is not a published-port clash)', () => {
    expect(boundPorts(TCP, 'tcp')).toEqual([8080, 22]);
  });
  it('UDP: every bound socket', () => {
    expect(boundPorts(UDP, 'udp')).toEqual([53]);
  });
  it('an empty or header-only table holds nothing', () => {
    expect(boundPorts('', 'tcp')).toEqual([]);
    expect(boundPorts(TCP.split('\n')[0]!, 'tcp')).toEqual([]);
  });
});
