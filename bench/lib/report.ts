// A scenario's output: a short table on stdout and a JSON report in bench/results/<scenario>.json.
import { mkdir, writeFile } from "node:fs/promises";
import { join, relative, resolve } from "node:path";

const RESULTS_DIRECTORY = resolve(import.meta.dirname, "../results");

/** One row of the printed table; `target` says what the figure must meet, when it has to. */
export interface Row {
	label: string;
	value: string;
	target?: string;
	met?: boolean;
}

export function printTable(title: string, rows: readonly Row[]): void {
	const labelWidth = Math.max(...rows.map((row) => row.label.length));
	const valueWidth = Math.max(...rows.map((row) => row.value.length));
	console.log(`\n${title}`);
	for (const row of rows) {
		const verdict = row.met === undefined ? "" : row.met ? "  ok  " : "  MISS";
		const target = row.target === undefined ? "" : `${verdict} (target ${row.target})`;
		console.log(`  ${row.label.padEnd(labelWidth)}  ${row.value.padStart(valueWidth)}${target}`);
	}
}

/** Writes the report and returns its path relative to the working directory. */
export async function writeReport(scenario: string, report: unknown): Promise<string> {
	await mkdir(RESULTS_DIRECTORY, { recursive: true });
	const path = join(RESULTS_DIRECTORY, `${scenario}.json`);
	await writeFile(path, `${JSON.stringify(report, null, "\t")}\n`);
	return relative(process.cwd(), path);
}

/** Writes an SVG picture beside the report (bench/results/<name>.svg) and returns its path. */
export async function writeChart(name: string, svg: string): Promise<string> {
	await mkdir(RESULTS_DIRECTORY, { recursive: true });
	const path = join(RESULTS_DIRECTORY, `${name}.svg`);
	await writeFile(path, svg);
	return relative(process.cwd(), path);
}

export function percent(fraction: number, digits = 1): string {
	return `${(fraction * 100).toFixed(digits)}%`;
}

export function milliseconds(value: number): string {
	return Number.isFinite(value) ? `${Math.round(value)} ms` : "n/a";
}
