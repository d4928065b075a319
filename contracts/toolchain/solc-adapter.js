#!/usr/bin/env node
/**
 * solc-adapter: a stand-in for the native `solc` binary, built on solc-js's JS API.
 *
 * No native solc can be installed on Voisin's machines, and the solcjs CLI prints a
 * non-JSON line on stdout, so py-solc-x (`solc_binary=`) and crytic-compile (`solc=`)
 * cannot drive it. This program answers the two things they use, the way native solc does:
 *
 *   solc --version
 *   solc --standard-json [--base-path DIR] [--include-path DIR]... [--allow-paths A,B] [FILE|-]
 *
 * Imports (and `urls` entries) that the standard JSON input does not already contain are
 * read from disk: a relative source unit name is looked up under the base path (the current
 * directory when none is given) and each include path; the file found must lie inside the
 * base path, an include path or an allowed path, after symlinks are resolved.
 *
 * Other options are ignored with a note on stderr rather than rejected, because callers pass
 * flags meant for native solc (e.g. `--optimize`) that carry no meaning in standard JSON mode.
 *
 * Run it through scripts/solc, which finds node and this file from any directory.
 */
'use strict';

const fs = require('fs');
const path = require('path');
const { createRequire } = require('module');

const REPO_ROOT = path.resolve(__dirname, '..', '..');

// Native solc options that take a value: skipping the value keeps it from being
// mistaken for the standard JSON input file.
const IGNORED_OPTIONS_WITH_VALUE = new Set([
  '-o',
  '--output-dir',
  '--evm-version',
  '--optimize-runs',
  '--libraries',
  '--combined-json',
  '--revert-strings',
  '--debug-info',
  '--metadata-hash',
  '--model-checker-engine',
  '--model-checker-targets',
  '--model-checker-timeout',
  '--stop-after',
  '--eof-version',
]);

function fail(message, exitCode = 1) {
  // py-solc-x strips a leading "Error: " from stderr, as native solc prints it.
  process.stderr.write(`Error: ${message}\n`);
  process.exit(exitCode);
}

function note(message) {
  process.stderr.write(`solc-adapter: ${message}\n`);
}

function loadSolc() {
  // Resolved from the repository's package.json, not from the caller's directory, so the
  // compiler is always the one pinned there.
  const requireFromRepo = createRequire(path.join(REPO_ROOT, 'package.json'));
  try {
    return requireFromRepo('solc');
  } catch (err) {
    if (err && err.code === 'MODULE_NOT_FOUND') {
      fail(`solc-js is not installed under ${REPO_ROOT}/node_modules (${err.message.split('\n')[0]}); run scripts/install`);
    }
    throw err;
  }
}

function splitValue(args, i) {
  const arg = args[i];
  const eq = arg.indexOf('=');
  if (arg.startsWith('--') && eq !== -1) {
    return { value: arg.slice(eq + 1), next: i };
  }
  if (i + 1 >= args.length) {
    fail(`the argument for option '${arg}' is required`);
  }
  return { value: args[i + 1], next: i + 1 };
}

function parseArgs(args) {
  const opts = {
    version: false,
    help: false,
    standardJson: false,
    basePath: null,
    includePaths: [],
    allowPaths: [],
    inputFile: null,
  };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    const name = arg.startsWith('--') ? arg.split('=', 1)[0] : arg;
    if (name === '--version') {
      opts.version = true;
    } else if (name === '--help' || name === '-h') {
      opts.help = true;
    } else if (name === '--standard-json') {
      opts.standardJson = true;
    } else if (name === '--base-path') {
      const { value, next } = splitValue(args, i);
      opts.basePath = value;
      i = next;
    } else if (name === '--include-path') {
      const { value, next } = splitValue(args, i);
      opts.includePaths.push(value);
      i = next;
    } else if (name === '--allow-paths') {
      const { value, next } = splitValue(args, i);
      opts.allowPaths.push(...value.split(',').filter((p) => p !== ''));
      i = next;
    } else if (IGNORED_OPTIONS_WITH_VALUE.has(name)) {
      const { next } = splitValue(args, i);
      note(`ignoring option ${name} (not used in standard JSON mode)`);
      i = next;
    } else if (arg.startsWith('-') && arg !== '-') {
      note(`ignoring unsupported option ${arg}`);
    } else if (arg.includes('=')) {
      note(`ignoring remapping ${arg} (put remappings in the standard JSON settings)`);
    } else if (opts.inputFile === null) {
      opts.inputFile = arg;
    } else {
      fail(`only one standard JSON input file may be given (got ${opts.inputFile} and ${arg})`);
    }
  }
  return opts;
}

function canonical(p) {
  const abs = path.resolve(p);
  try {
    return fs.realpathSync(abs);
  } catch {
    return abs;
  }
}

function isInside(file, dir) {
  if (file === dir) return true;
  const prefix = dir.endsWith(path.sep) ? dir : dir + path.sep;
  return file.startsWith(prefix);
}

function makeImportCallback(opts) {
  const basePath = canonical(opts.basePath === null || opts.basePath === '' ? '.' : opts.basePath);
  const includePaths = opts.includePaths.map(canonical);
  const searchRoots = [basePath, ...includePaths];
  const allowedDirs = [...searchRoots, ...opts.allowPaths.map(canonical)];
  const allowedText = allowedDirs.map((d) => `"${d}"`).join(', ');

  return function readFile(sourceUnitName) {
    let name = sourceUnitName;
    if (name.startsWith('file://')) {
      name = name.slice('file://'.length);
    } else if (/^[A-Za-z][A-Za-z0-9+.-]*:/.test(name)) {
      return { error: `Unsupported URL scheme in "${sourceUnitName}"; only local files are read.` };
    }

    const candidates = path.isAbsolute(name)
      ? [path.resolve(name)]
      : searchRoots.map((root) => path.resolve(root, name));

    // Checked before touching the file system, so a refused path reveals nothing about
    // whether a file exists there.
    const permitted = candidates.filter((c) => allowedDirs.some((d) => isInside(c, d)));
    if (permitted.length === 0) {
      return { error: `File outside of allowed directories. The following are allowed: ${allowedText}.` };
    }

    const found = [];
    for (const candidate of permitted) {
      try {
        if (fs.statSync(candidate).isFile()) found.push(candidate);
      } catch {
        // Not there: try the next root.
      }
    }
    if (found.length === 0) {
      const searched = permitted.map((c) => `"${c}"`).join(', ');
      return { error: `File not found. Searched the following locations: ${searched}.` };
    }
    if (found.length > 1) {
      const where = found.map((c) => `"${c}"`).join(', ');
      return { error: `Ambiguous import. Multiple matching files found inside base path and include paths: ${where}.` };
    }

    // A symlink inside an allowed directory must not lead outside of it.
    const real = fs.realpathSync(found[0]);
    if (!allowedDirs.some((d) => isInside(real, d))) {
      return { error: `File outside of allowed directories. The following are allowed: ${allowedText}.` };
    }
    try {
      return { contents: fs.readFileSync(real, 'utf8') };
    } catch (err) {
      return { error: `Cannot read "${real}": ${err.message}` };
    }
  };
}

function readInput(inputFile) {
  try {
    return fs.readFileSync(inputFile === null || inputFile === '-' ? 0 : inputFile, 'utf8');
  } catch (err) {
    return fail(`cannot read the standard JSON input: ${err.message}`);
  }
}

function main(argv) {
  const opts = parseArgs(argv);
  if (opts.help) {
    process.stdout.write(
      'solc-adapter (solc-js behind a native solc command line)\n' +
        'Usage: solc --version\n' +
        '       solc --standard-json [--base-path DIR] [--include-path DIR]... [--allow-paths DIR[,DIR]...] [FILE|-]\n',
    );
    return;
  }
  if (opts.version) {
    const solc = loadSolc();
    // Native solc's exact shape; py-solc-x and crytic-compile parse the "Version:" line.
    process.stdout.write(`solc, the solidity compiler commandline interface\nVersion: ${solc.version()}\n`);
    return;
  }
  if (!opts.standardJson) {
    fail('only --version and --standard-json are supported by this solc (solc-js adapter)');
  }
  const input = readInput(opts.inputFile);
  const solc = loadSolc();
  const output = solc.compile(input, { import: makeImportCallback(opts) });
  process.stdout.write(output + '\n');
}

main(process.argv.slice(2));
