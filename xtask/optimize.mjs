// Optimizes WASM modules in place with binaryen (npm's `binaryen`, the library behind
// `wasm-opt`), all in one process: `cargo xtask build --release` hands it the main module and
// the few hundred page modules of a split build. Starting `wasm-opt` once per module cost
// minutes (the npm build is itself WASM, compiled at every start); this takes seconds.
//
// Level: -O1 without shrinking. Measured on the split bundle (docs/BENCHMARKS.md, "First load"),
// it gives the smallest *compressed* modules — which is what browsers download — of -O1, -O2,
// -Os, -Oz and -O3: the size levels make the raw files smaller but compress worse.
//
//   node xtask/optimize.mjs FILE.wasm...
import binaryen from 'binaryen';
import { readFileSync, writeFileSync } from 'node:fs';

binaryen.setOptimizeLevel(1);
binaryen.setShrinkLevel(0);
// The features Rust's wasm32-unknown-unknown target enables (as `wasm-opt` would be told with
// `--enable-*`); validation below catches a module that needs more.
const F = binaryen.Features;
const features = F.MutableGlobals | F.SignExt | F.BulkMemory | F.BulkMemoryOpt
  | F.NontrappingFPToInt | F.Multivalue | F.ReferenceTypes;

for (const file of process.argv.slice(2)) {
  const module = binaryen.readBinary(readFileSync(file));
  module.setFeatures(features);
  if (!module.validate()) {
    console.error(`optimize.mjs: ${file} does not validate`);
    process.exit(1);
  }
  module.optimize();
  writeFileSync(file, module.emitBinary());
  module.dispose();
}
