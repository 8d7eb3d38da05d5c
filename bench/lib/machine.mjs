// What machine the figures were taken on.
import { readFile } from 'node:fs/promises';
import { cpus, loadavg, release, totalmem } from 'node:os';

/** CPU model, cores, memory, kernel and Node version. */
export async function machineInfo() {
  const list = cpus();
  let distro = '';
  try {
    const osRelease = await readFile('/etc/os-release', 'utf8');
    distro = /^PRETTY_NAME="?([^"\n]*)"?/m.exec(osRelease)?.[1] ?? '';
  } catch {
    // Not Linux, or no os-release: leave the distribution out.
  }
  return {
    cpuModel: list[0]?.model?.trim() ?? 'unknown',
    cores: list.length,
    memoryGiB: Math.round((totalmem() / 1024 ** 3) * 10) / 10,
    kernel: `${process.platform} ${release()}`,
    distro,
    node: process.version,
  };
}

/** The 1-minute load average now: other work on the machine skews the figures. */
export function currentLoad() {
  return Math.round(loadavg()[0] * 100) / 100;
}

/** One line for RESULTS.md. */
export function describeMachine(m) {
  const distro = m.distro ? `, ${m.distro}` : '';
  return `${m.cpuModel}, ${m.cores} cores, ${m.memoryGiB} GiB RAM, ${m.kernel}${distro}, Node ${m.node}`;
}
