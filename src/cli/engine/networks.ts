// `network create|ls|inspect|rm|prune|connect|disconnect` and `port`. Printing only; the work
// is in src/engine/networks.ts and src/network/.
import type { Command } from 'commander';
import type { EngineContext } from '../../engine/context.js';
import { connectContainer, createNetwork, disconnectContainer, inspectNetwork, networkId, pruneNetworks, removeNetwork } from '../../engine/networks.js';
import { formatPortMapping } from '../../network/ports.js';
import { TsrunError } from '../../util/errors.js';
import type { Act } from './containers.js';
import { formatAll } from './go-template.js';
import { table } from './table.js';

const out = (s: string) => process.stdout.write(s);
const collect = (v: string, prev: string[] = []) => [...prev, v];

export function registerNetworkCommands(program: Command, ctxOf: () => EngineContext, act: Act): void {
  const network = program.command('network').description('bridge networks (CNI): containers on one reach each other by name');
  network
    .command('create')
    .argument('<name>')
    .option('--subnet <cidr>', 'IPv4 subnet (default: a free /24 of 10.86.0.0/16)')
    .option('--gateway <ip>', 'gateway address in the subnet (default: its first address)')
    .option('--internal', 'no route out of the network and no published ports')
    .option('-d, --driver <driver>', 'bridge (the only driver)', 'bridge')
    .description('create a network')
    .action(
      act((name: string, o: { subnet?: string; gateway?: string; internal?: boolean; driver: string }) => {
        if (o.driver !== 'bridge') throw new TsrunError('ERR_UNSUPPORTED', `--driver ${o.driver}: only bridge`);
        const n = createNetwork(ctxOf(), {
          name,
          ...(o.subnet ? { subnet: o.subnet } : {}),
          ...(o.gateway ? { gateway: o.gateway } : {}),
          internal: o.internal === true,
        });
        out(`${n.name}\n`);
        return 0;
      }),
    );
  for (const ls of [network.command('ls'), network.command('list', { hidden: true })]) {
    ls.option('-q, --quiet', 'names only')
      .option('--format <format>', 'json or a Go template: {{.Name}} {{.Subnet}} …')
      .description('list networks')
      .action(
        act((o: { quiet?: boolean; format?: string }) => {
          const rows = ctxOf()
            .networks.store.all()
            .map((n) => ({
              ID: networkId(n.name).slice(0, 12),
              Name: n.name,
              Driver: 'bridge',
              Subnet: n.subnet,
              Gateway: n.gateway,
              Internal: n.internal,
              Bridge: n.bridge,
            }));
          if (o.quiet) out(rows.map((r) => `${r.Name}\n`).join(''));
          else
            out(
              formatAll(o.format, rows, () =>
                table([
                  ['NETWORK ID', 'NAME', 'DRIVER', 'SUBNET', 'GATEWAY', 'INTERNAL'],
                  ...rows.map((r) => [r.ID, r.Name, r.Driver, r.Subnet, r.Gateway, String(r.Internal)]),
                ]),
              ),
            );
          return 0;
        }),
      );
  }
  network
    .command('inspect')
    .argument('<name...>')
    .option('-f, --format <format>', 'a Go template')
    .description('show networks and the containers on them')
    .action(
      act((names: string[], o: { format?: string }) => {
        const ctx = ctxOf();
        const nets = names.map((n) => inspectNetwork(ctx, ctx.networks.store.need(n)));
        out(o.format ? formatAll(o.format, nets, () => '') : `${JSON.stringify(nets, null, 2)}\n`);
        return 0;
      }),
    );
  network
    .command('rm')
    .alias('remove')
    .argument('<name...>')
    .description('remove networks no container uses')
    .action(
      act(async (names: string[]) => {
        for (const n of names) {
          await removeNetwork(ctxOf(), n);
          out(`${n}\n`);
        }
        return 0;
      }),
    );
  network
    .command('prune')
    .option('-f, --force', 'do not ask (kept for docker’s scripts)')
    .description('remove the networks no container uses (not the default one)')
    .action(
      act(async () => {
        for (const n of await pruneNetworks(ctxOf())) out(`${n}\n`);
        return 0;
      }),
    );
  network
    .command('connect')
    .argument('<network>')
    .argument('<container>')
    .option('--alias <name>', 'another name on this network (repeatable)', collect, [])
    .description('put a container on a network (now if it runs, else at its next start)')
    .action(
      act(async (net: string, ref: string, o: { alias: string[] }) => {
        await connectContainer(ctxOf(), net, ref, o.alias);
        return 0;
      }),
    );
  network
    .command('disconnect')
    .argument('<network>')
    .argument('<container>')
    .description('take a container off a network')
    .action(
      act(async (net: string, ref: string) => {
        await disconnectContainer(ctxOf(), net, ref);
        return 0;
      }),
    );

  program
    .command('port')
    .argument('<container>')
    .argument('[port]', 'PORT[/PROTO]: only this container port')
    .description('the published ports of a container: 80/tcp -> 127.0.0.1:8080')
    .action(
      act((ref: string, port: string | undefined) => {
        const rec = ctxOf().containers.resolve(ref);
        const [p, proto = 'tcp'] = (port ?? '').split('/');
        const maps = (rec.ports ?? []).filter((m) => !port || (String(m.containerPort) === p && m.protocol === proto));
        if (port && maps.length === 0) throw new TsrunError('ERR_INVALID_ARGUMENT', `no public port ${port} published for ${rec.name}`);
        for (const m of maps) {
          const host = formatPortMapping(m).split('->')[0];
          out(port ? `${host}\n` : `${m.containerPort}/${m.protocol} -> ${host}\n`);
        }
        return 0;
      }),
    );
}
