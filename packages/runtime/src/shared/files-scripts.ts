/**
 * The constant bash scripts behind SandboxFiles. Each runs inside the sandbox (so the kernel
 * resolves every path within its root) and takes its paths as $1, $2 …; `fail` comes from the
 * prelude in files-run.ts. Scripts that stream print the marker `K` on stdout once their checks
 * have passed, so the host knows the rest of stdout is data.
 */

/** find -printf fields, each NUL-terminated: type letter, size, octal mode, mtime, name. */
const FIND_FORMAT = '%y\\0%s\\0%m\\0%T@\\0%f\\0';
export const FIND_FIELDS = 5;

/** $1 = path. lstat semantics: a symlink is reported as a symlink. */
export const STAT_SCRIPT = `exec find "$1" -maxdepth 0 -printf '${FIND_FORMAT}'`;

/**
 * $1 = directory (a symlink to a directory is followed). The directory itself is checked first;
 * after that an entry that vanishes while it is listed is skipped, not an error.
 */
export const LIST_SCRIPT = `
if [ -e "$1" ] && [ ! -d "$1" ]; then fail NOT_A_DIRECTORY "$1: Not a directory"; fi
if [ -L "$1" ] && [ ! -e "$1" ]; then fail FILE_NOT_FOUND "$1: No such file or directory"; fi
cd -- "$1" || exit 1
if [ ! -r . ]; then fail PERMISSION_DENIED "$1: Permission denied"; fi
find -H "$1" -mindepth 1 -maxdepth 1 -printf '${FIND_FORMAT}' 2>/dev/null
exit 0`;

/** $1 = file, $2 = first byte, $3 = byte count or empty for "to the end". */
export const READ_SCRIPT = `
if [ -d "$1" ]; then fail IS_A_DIRECTORY "$1: Is a directory"; fi
if [ -p "$1" ] || [ -S "$1" ]; then fail INVALID_ARGUMENT "$1: not a regular file"; fi
exec 3< "$1" || exit 1
printf K
if [ "$2" = 0 ] && [ -z "$3" ]; then exec cat <&3 3<&-; fi
if [ -z "$3" ]; then exec dd bs=1M iflag=skip_bytes skip="$2" status=none <&3 3<&-; fi
exec dd bs=1M iflag=skip_bytes,count_bytes skip="$2" count="$3" status=none <&3 3<&-`;

/**
 * $1 = directory to create (with parents), $2 = temp-name prefix, $3 = a path that must not be a
 * directory (the write target), or empty. Prints the temp path then NUL, copies stdin into it,
 * then prints its size (a stdin cut short by the host is discarded by the host, by name). The
 * temp file is made in the directory's physical path, so a symlink swapped later cannot split
 * temp and target.
 */
export const UPLOAD_SCRIPT = `
if [ -n "$3" ] && [ -d "$3" ] && [ ! -L "$3" ]; then fail IS_A_DIRECTORY "$3: Is a directory"; fi
if [ -e "$1" ] && [ ! -d "$1" ]; then fail NOT_A_DIRECTORY "$1: Not a directory"; fi
mkdir -p -- "$1" || exit 1
dir=$(cd -- "$1" && pwd -P && echo .) || exit 1
dir=\${dir%?.}
tmp=$(mktemp -- "\${dir%/}/$2XXXXXXXX") || exit 1
trap 'rm -f -- "$tmp"; exit 143' TERM INT HUP PIPE
printf '%s\\0' "$tmp"
if ! cat > "$tmp"; then rm -f -- "$tmp"; exit 1; fi
printf '%s' "$(stat -c %s -- "$tmp")"`;

// $tmp → $target with mode $mode, or the old file's mode, else 644; the temp file never stays.
const COMMIT_STEP = `
if [ -n "$mode" ]; then :
elif [ -f "$target" ] && [ ! -L "$target" ]; then mode=$(stat -c %a -- "$target") || mode=644
else mode=644; fi
chmod -- "$mode" "$tmp" && mv -fT -- "$tmp" "$target" && exit 0
rc=$?; rm -f -- "$tmp"; exit $rc`;

/** $1 = temp file, $2 = target, $3 = octal mode or empty (keep the old file's mode, else 644). */
export const COMMIT_SCRIPT = `tmp=$1 target=$2 mode=$3${COMMIT_STEP}`;

/**
 * A whole write in one process when its size is known: $1 = target, $2 = byte count, $3 = octal
 * mode or empty; stdin carries exactly $2 bytes. A short stdin (the host went away) commits
 * nothing. The temp file sits in the parent's physical path, like UPLOAD_SCRIPT's.
 */
export const WRITE_KNOWN_SCRIPT = `
if [ -d "$1" ] && [ ! -L "$1" ]; then fail IS_A_DIRECTORY "$1: Is a directory"; fi
parent=\${1%/*}; parent=\${parent:-/}
if [ -e "$parent" ] && [ ! -d "$parent" ]; then fail NOT_A_DIRECTORY "$parent: Not a directory"; fi
mkdir -p -- "$parent" || exit 1
dir=$(cd -- "$parent" && pwd -P && echo .) || exit 1
dir=\${dir%?.}; dir=\${dir%/}
tmp=$(mktemp -- "$dir/.corral-tmp-XXXXXXXX") || exit 1
target="$dir/\${1##*/}" mode=$3
if ! head -c "$2" > "$tmp" || [ "$(stat -c %s -- "$tmp")" != "$2" ]; then
  rm -f -- "$tmp"; echo "short upload" >&2; exit 1
fi${COMMIT_STEP}`;

/** $1 = temp file to remove (after an aborted upload). */
export const DISCARD_SCRIPT = `exec rm -f -- "$1"`;

/** $1 = directory, created with parents; an existing directory is fine. */
export const MKDIR_SCRIPT = `exec mkdir -p -- "$1"`;

/** $1 = path, $2 = 'recursive' or empty. A missing path is an error. */
export const REMOVE_SCRIPT = `
if [ ! -e "$1" ] && [ ! -L "$1" ]; then ls -d -- "$1" >/dev/null || exit 1; fi
if [ "$1" = / ]; then fail INVALID_ARGUMENT "refusing to remove /"; fi
if [ -d "$1" ] && [ ! -L "$1" ]; then
  if [ "$2" = recursive ]; then exec rm -rf -- "$1"; fi
  if [ -n "$(ls -A -- "$1")" ]; then fail IS_A_DIRECTORY "$1: Directory not empty (remove it with recursive)"; fi
  exec rmdir -- "$1"
fi
exec rm -f -- "$1"`;

/** $1 = from, $2 = to. The target's parent must exist; a non-empty directory is not replaced. */
export const MOVE_SCRIPT = `
if [ ! -e "$1" ] && [ ! -L "$1" ]; then ls -d -- "$1" >/dev/null || exit 1; fi
exec mv -T -- "$1" "$2"`;

/**
 * $1 = directory, $2 = 'gzip' or empty. Unreadable files are skipped and a file changing while
 * it is read (tar's exit 1) is not fatal: a live tree still downloads.
 */
export const TAR_OUT_SCRIPT = `
cd -- "$1" || exit 1
printf K
z=; if [ "$2" = gzip ]; then z=-z; fi
tar -c $z -f - --ignore-failed-read --warning=no-file-ignored --warning=no-file-changed .
rc=$?; if [ $rc = 1 ]; then exit 0; fi; exit $rc`;

/**
 * $1 = archive file (removed afterwards), $2 = target directory, $3 = 'gzip' or empty; stdin =
 * the members' directory prefixes, NUL-terminated. GNU tar follows a symlink already on disk in
 * a member's directories, so each prefix that is a symlink must resolve inside the target.
 */
export const TAR_IN_SCRIPT = `
root=$(cd -- "$2" && pwd -P && echo .) || { rm -f -- "$1"; exit 1; }
root=\${root%?.}; root=\${root%/}
while IFS= read -r -d '' p; do
  if [ -L "$2/$p" ]; then
    real=$(realpath -m -- "$2/$p" && echo .); real=\${real%?.}
    case "$real/" in "$root"/*) ;; *) rm -f -- "$1"; fail INVALID_ARGUMENT "archive refused: $p leads out of the target";; esac
  fi
done
z=; if [ "$3" = gzip ]; then z=-z; fi
tar -x $z -f "$1" -C "$2" --no-same-owner --no-overwrite-dir --warning=no-timestamp
rc=$?; rm -f -- "$1"; exit $rc`;
