#!/usr/bin/env node
// The `corral` command's entry: a committed, executable file (tsc writes dist/main.js without
// the exec bit, so a bin pointing there would not run after a fresh `npm run build`).
import '../dist/main.js';
