// The sharding simulation (bench/sharding/sharded-pool.ts): one key's limit split over 4 Pool
// shards under skewed and shifting load, with and without share rebalancing, against the limit.

import { finish, percent, type Row, writeChart } from "../lib/report.ts";
import type { Scenario } from "../lib/scenario.ts";
import { lineChart } from "../lib/svg-chart.ts";
import {
	type ShardedPoolOptions,
	type SimulationResult,
	simulate,
} from "../sharding/sharded-pool.ts";

/** 300,000 requests a minute: a key whose traffic outgrows one Pool object. */
const LIMIT_PER_SECOND = 5_000;
const DURATION_MS = 180_000;
/** At 1.2× the limit the first 10 s burst takes 50 s to drain; judge after it. */
const MEASURE_FROM_MS = 60_000;
const SKEW = [0.7, 0.2, 0.05, 0.05] as const;
const SHIFT_EVERY_MS = 15_000;
const ACCURACY_TARGET = 0.02;

const rebalanced: ShardedPoolOptions = {
	limitPerSecond: LIMIT_PER_SECOND,
	shards: 4,
	burstSeconds: 10,
	rebalanceEveryMs: 1_000,
	minShareFraction: 0.02,
};

/** 70/20/5/5, the busy shard moving to the next one every SHIFT_EVERY_MS. */
function shifting(nowMs: number): readonly number[] {
	const turn = Math.floor(nowMs / SHIFT_EVERY_MS);
	return SKEW.map(
		(_, index) => SKEW[(index + SKEW.length - (turn % SKEW.length)) % SKEW.length] as number,
	);
}

interface Case {
	name: string;
	pool: ShardedPoolOptions;
	overload: number;
	skew: "70/20/5/5" | "shifting";
	/** Held to the accuracy target. */
	judged: boolean;
}

const CASES: readonly Case[] = [
	{
		name: "one pool",
		pool: { ...rebalanced, shards: 1 },
		overload: 2,
		skew: "70/20/5/5",
		judged: false,
	},
	{
		name: "4 shards, fixed equal shares",
		pool: { ...rebalanced, rebalanceEveryMs: 0 },
		overload: 2,
		skew: "70/20/5/5",
		judged: false,
	},
	{
		name: "4 shards, rebalanced each 1 s",
		pool: rebalanced,
		overload: 2,
		skew: "70/20/5/5",
		judged: true,
	},
	{
		name: "4 shards, rebalanced each 1 s",
		pool: rebalanced,
		overload: 1.2,
		skew: "70/20/5/5",
		judged: true,
	},
	{
		name: "4 shards, rebalanced each 1 s",
		pool: rebalanced,
		overload: 2,
		skew: "shifting",
		judged: true,
	},
	{
		name: "4 shards, rebalanced each 1 s",
		pool: rebalanced,
		overload: 1.2,
		skew: "shifting",
		judged: true,
	},
	{
		name: "4 shards, fixed equal shares",
		pool: { ...rebalanced, rebalanceEveryMs: 0 },
		overload: 2,
		skew: "shifting",
		judged: false,
	},
];

function label(entry: Case): string {
	return `${entry.name}, ${entry.skew}, offered ${entry.overload}× limit`;
}

async function run(): Promise<boolean> {
	console.log(
		`sharding: a limit of ${LIMIT_PER_SECOND}/s, ${DURATION_MS / 1000} s of Poisson arrivals per case, judged from ${MEASURE_FROM_MS / 1000} s`,
	);
	const results: { entry: Case; result: SimulationResult }[] = CASES.map((entry, index) => ({
		entry,
		result: simulate({
			pool: entry.pool,
			offeredPerSecond: LIMIT_PER_SECOND * entry.overload,
			durationMs: DURATION_MS,
			skewAt: entry.skew === "shifting" ? shifting : () => SKEW,
			measureFromMs: MEASURE_FROM_MS,
			seed: index + 1,
		}),
	}));
	const rows: Row[] = results.map(({ entry, result }) => {
		const error = result.ofLimit - 1;
		return {
			label: label(entry),
			value: `${result.admittedPerSecond.toFixed(0)}/s = ${percent(result.ofLimit, 2)} of limit`,
			...(entry.judged && {
				target: `within ${percent(ACCURACY_TARGET, 0)}`,
				met: Math.abs(error) <= ACCURACY_TARGET,
			}),
		};
	});
	const refused = results.reduce((total, { result }) => total + result.providerRefused, 0);
	rows.push({
		label: "admitted that a provider with the same limit and burst would refuse",
		value: String(refused),
		target: "0",
		met: refused === 0,
	});

	const shiftingCases = results.filter(
		({ entry }) => entry.skew === "shifting" && entry.overload === 2,
	);
	const chart = await writeChart(
		"sharding",
		lineChart({
			title: "Admitted per second, 4 shards, busy shard moving every 15 s, 2× offered",
			xLabel: "time (s)",
			yLabel: "admitted per second",
			yMax: LIMIT_PER_SECOND * 2.2,
			series: [
				...shiftingCases.map(({ entry, result }) => ({
					name: entry.pool.rebalanceEveryMs > 0 ? "rebalanced" : "fixed shares",
					points: result.admittedPerSecondTimeline.map((count, second) => [second, count] as const),
				})),
				{
					name: "limit",
					points: [
						[0, LIMIT_PER_SECOND],
						[DURATION_MS / 1000, LIMIT_PER_SECOND],
					] as const,
					dashed: true,
				},
			],
		}),
	);
	return finish("sharding", "sharding — admitted rate against the limit", rows, {
		setup: {
			limitPerSecond: LIMIT_PER_SECOND,
			durationMs: DURATION_MS,
			measureFromMs: MEASURE_FROM_MS,
			skew: `${SKEW.join("/")} of the offered load per shard; shifting: the busy shard moves every ${SHIFT_EVERY_MS / 1000} s`,
			rebalanced,
			arrivals: "Poisson, one seed per case; a refused request is not retried",
		},
		cases: results.map(({ entry, result }) => ({
			...entry,
			offered: result.offered,
			admitted: result.admitted,
			admittedPerSecond: result.admittedPerSecond,
			ofLimit: result.ofLimit,
			providerRefused: result.providerRefused,
			admittedPerSecondTimeline: result.admittedPerSecondTimeline,
			finalShares: result.sharesTimeline.at(-1),
		})),
		chart,
	});
}

export const sharding: Scenario = {
	name: "sharding",
	summary: "simulated 4-way sharded pool: admitted rate vs limit under skewed and shifting load",
	run,
};
