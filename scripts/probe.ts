// `npm run probe`: replays the attacks of issue 9 against `wrangler dev` on loopback, with a loopback
// echo server as the provider, prints each check's figures, and exits non-zero if any got through.
import { runProbe } from "./probe/attacks.ts";

const report = await runProbe({ log: (line) => console.log(line) });
for (const line of report.lines()) console.log(line);
console.log(
	report.failed === 0 ? "probe: every attack was stopped" : `probe: ${report.failed} failures`,
);
process.exitCode = report.failed === 0 ? 0 : 1;
