// `npm run probe` as part of the suite: the attacks of issue 9 against wrangler dev (one round of
// the body attacks here; the script runs three), and not one of them may get through.
import { expect, it } from "vitest";
import { runProbe } from "../../scripts/probe/attacks.ts";

it("every attack of the probe is stopped", { timeout: 240_000 }, async () => {
	const report = await runProbe({ bodyRounds: 1 });
	const failed = report.lines().filter((line) => !line.startsWith("ok  "));
	expect(report.checks.size).toBeGreaterThan(10);
	expect(report.failed, failed.join("\n")).toBe(0);
});
