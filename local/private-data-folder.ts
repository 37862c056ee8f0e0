import { chmodSync, lstatSync, mkdirSync, readdirSync } from "node:fs";
import { join } from "node:path";

/**
 * Creates the data folder private to its owner, or makes an existing one private: the folder and
 * every folder below it 0700, every file 0600 (folders made by older versions, or files written
 * with the default umask, such as dynalite's LevelDB files, which hold sealed secrets). Symbolic
 * links are left alone. Components then create their files 0600 (dynalite runs with umask 077).
 */
export function preparePrivateDataFolder(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  makePrivate(dir);
}

function makePrivate(path: string): void {
  const stat = lstatSync(path);
  if (stat.isSymbolicLink()) return;
  if (stat.isDirectory()) {
    if ((stat.mode & 0o777) !== 0o700) chmodSync(path, 0o700);
    for (const name of readdirSync(path)) makePrivate(join(path, name));
  } else if ((stat.mode & 0o777) !== 0o600) {
    chmodSync(path, 0o600);
  }
}
