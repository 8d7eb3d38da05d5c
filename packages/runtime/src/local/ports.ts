import { readdir, readFile, readlink } from 'node:fs/promises';
import type { PortInfo } from '../interface.js';
import { parsePorts } from '../shared/ports-over-exec.js';

/**
 * Listening TCP ports of a sandbox, read from the host: the socket tables of the init's netns
 * (/proc/<init>/net/tcp{,6}) matched to the sandbox's processes (its cgroup) by socket inode, with
 * pids translated into the sandbox's pid namespace. No process runs inside, and no capability
 * (CAP_SYS_PTRACE for other users' fds) has to be granted to the sandbox's root.
 */
export async function listPortsFromHost(initPid: number, hostPids: number[]): Promise<PortInfo[]> {
  const lines: string[] = [];
  for (const table of ['tcp', 'tcp6']) {
    lines.push(await readFile(`/proc/${initPid}/net/${table}`, 'utf8').catch(() => ''));
  }
  const fds: string[] = ['@fds'];
  const comms: string[] = ['@comm'];
  for (const hostPid of hostPids) {
    const status = await readFile(`/proc/${hostPid}/status`, 'utf8').catch(() => '');
    const nsPid = /^NSpid:\s+(.*)$/m.exec(status)?.[1]?.trim().split(/\s+/).pop();
    if (!nsPid) continue;
    const entries = await readdir(`/proc/${hostPid}/fd`).catch(() => [] as string[]);
    for (const fd of entries) {
      const target = await readlink(`/proc/${hostPid}/fd/${fd}`).catch(() => '');
      if (target.startsWith('socket:')) fds.push(`/proc/${nsPid}/fd ${target}`);
    }
    const comm = (await readFile(`/proc/${hostPid}/comm`, 'utf8').catch(() => '')).trim();
    if (comm) comms.push(`${nsPid} ${comm}`);
  }
  return parsePorts([...lines, ...fds, ...comms].join('\n'));
}
