// Runs the benchmark scenarios in order (`npm run bench`), or the ones named:
// node bench/run.ts limit   |   node bench/run.ts --list
import type { Scenario } from "./lib/scenario.ts";
import { aborts } from "./scenarios/aborts.ts";
import { batches } from "./scenarios/batches.ts";
import { budgets } from "./scenarios/budgets.ts";
import { ceiling } from "./scenarios/ceiling.ts";
import { core } from "./scenarios/core.ts";
import { decisions } from "./scenarios/decisions.ts";
import { distance } from "./scenarios/distance.ts";
import { limit } from "./scenarios/limit.ts";
import { overhead } from "./scenarios/overhead.ts";
import { overload } from "./scenarios/overload.ts";
import { sharding } from "./scenarios/sharding.ts";
import { streaming } from "./scenarios/streaming.ts";
import { wrongLimit } from "./scenarios/wrong-limit.ts";

const SCENARIOS: readonly Scenario[] = [
	limit,
	overhead,
	ceiling,
	decisions,
	distance,
	streaming,
	core,
	sharding,
	overload,
	wrongLimit,
	aborts,
	batches,
	budgets,
];

async function main(names: string[]): Promise<boolean> {
	if (names.includes("--list")) {
		for (const scenario of SCENARIOS)
			console.log(`${scenario.name.padEnd(12)} ${scenario.summary}`);
		return true;
	}
	const unknown = names.filter((name) => !SCENARIOS.some((scenario) => scenario.name === name));
	if (unknown.length > 0) {
		const known = SCENARIOS.map((scenario) => scenario.name).join(", ");
		throw new Error(`unknown scenario ${unknown.join(", ")}; known: ${known}`);
	}
	const chosen = names.length === 0 ? SCENARIOS : SCENARIOS.filter((s) => names.includes(s.name));
	let allMet = true;
	for (const scenario of chosen) {
		const met = await scenario.run();
		if (!met) console.log(`${scenario.name}: a target was missed`);
		allMet &&= met;
	}
	return allMet;
}

// Exit handlers stop the wrangler dev processes a scenario started; a signal alone would skip them.
for (const signal of ["SIGINT", "SIGTERM"] as const) process.once(signal, () => process.exit(130));

main(process.argv.slice(2)).then(
	(allMet) => process.exit(allMet ? 0 : 1),
	(error: unknown) => {
		console.error(error instanceof Error ? error.message : error);
		process.exit(2);
	},
);
