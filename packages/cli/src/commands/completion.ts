import type { Command } from 'commander';
import { standard } from '../command.js';
import { CliError } from '../errors.js';

/** Command names by path: '' → top-level commands, 'sandbox' → its subcommands. */
function tree(program: Command): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const walk = (cmd: Command, path: string) => {
    const names = cmd.commands.flatMap((c) => [c.name(), ...c.aliases()]);
    if (names.length) out.set(path, names);
    for (const c of cmd.commands)
      for (const n of [c.name(), ...c.aliases()]) walk(c, path ? `${path} ${n}` : n);
  };
  walk(program, '');
  return out;
}

function bash(program: Command): string {
  const cases = [...tree(program)]
    .filter(([path]) => path !== '')
    .map(([path, names]) => `    "${path}") words="${names.join(' ')}" ;;`)
    .join('\n');
  return `# corral bash completion: eval "$(corral completion bash)"
_corral() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" path="" words
  local i
  for ((i = 1; i < COMP_CWORD; i++)); do
    case "\${COMP_WORDS[i]}" in -*) ;; *) path="\${path:+$path }\${COMP_WORDS[i]}" ;; esac
  done
  case "$path" in
    "") words="${(tree(program).get('') ?? []).join(' ')}" ;;
${cases}
    *) words="" ;;
  esac
  COMPREPLY=($(compgen -W "$words --help --json" -- "$cur"))
}
complete -o default -F _corral corral
`;
}

function zsh(program: Command): string {
  return `#compdef corral
# corral zsh completion: eval "$(corral completion zsh)"
autoload -U bashcompinit && bashcompinit
${bash(program)}`;
}

/** `corral completion bash|zsh`: prints a completion script. */
export function completionCommand(program: Command): void {
  standard(
    program
      .command('completion')
      .argument('<shell>', 'bash or zsh')
      .description('print a shell completion script'),
    ['eval "$(corral completion bash)"   # in ~/.bashrc', 'eval "$(corral completion zsh)"    # in ~/.zshrc'],
    false,
  ).action((shell: string) => {
    if (shell === 'bash') process.stdout.write(bash(program));
    else if (shell === 'zsh') process.stdout.write(zsh(program));
    else
      throw new CliError(
        `No completion for "${shell}".`,
        'use `corral completion bash` or `corral completion zsh`',
        2,
      );
  });
}
