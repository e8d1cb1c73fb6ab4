// Runs `wrangler dev` on a free loopback port with a given TOLLBOOTH_CONFIG and a state directory of
// its own, for end-to-end tests and benchmarks; stop() ends its whole process group.
import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { copyFile, cp, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { basename, join, relative, resolve } from "node:path";

const PROJECT_ROOT = resolve(import.meta.dirname, "../..");
const WRANGLER_CLI = join(PROJECT_ROOT, "node_modules/wrangler/bin/wrangler.js");
const WRANGLER_TOML = join(PROJECT_ROOT, "wrangler.toml");
/** wrangler.toml's local-development environment, which `npm run dev` serves too. */
export const DEV_ENV = "dev";
/** The module name under which a bench entry imports tollbooth's Worker (see `entry`). */
const TOLLBOOTH_MODULE = "tollbooth-worker";
const POLL_INTERVAL_MS = 250;
const STOP_GRACE_MS = 5_000;

export interface WranglerDevOptions {
	/** TOLLBOOTH_CONFIG, or a function of the gateway's origin for pools that point back at it. */
	config: object | ((origin: string) => object);
	/** More vars, overriding wrangler.toml's (MOCK_RPM, a provider key for the pools, ...). */
	vars?: Record<string, string | number>;
	/** How long startup may take; wrangler needs ~10 s on a busy two-core machine. */
	readyTimeoutMs?: number;
	logLevel?: "debug" | "info" | "log" | "warn" | "error";
	/**
	 * A bench Worker to serve instead of wrangler.toml's main (a path under the project), built with
	 * wrangler.toml's bindings and flags; it imports tollbooth's Worker as "tollbooth-worker".
	 */
	entry?: string;
}

export interface WranglerDev {
	/** http://127.0.0.1:PORT */
	origin: string;
	/** wrangler's own output, kept until stop() for diagnosis. */
	logFile: string;
	/** wrangler's process id, also the id of the process group that holds its workerd processes. */
	pid: number;
	stop(): Promise<void>;
}

/** A loopback port that was free a moment ago (the OS picks it; we close it for the caller). */
export function freePort(): Promise<number> {
	return new Promise((found, failed) => {
		const server = createServer();
		server.once("error", failed);
		server.listen(0, "127.0.0.1", () => {
			const address = server.address();
			const port = typeof address === "object" && address !== null ? address.port : 0;
			server.close(() => found(port));
		});
	});
}

/** One `KEY='value'` line of a dotenv file; wrangler expands `$` in values, so they may not hold it. */
function envLine(name: string, value: string): string {
	if (/['$\n\r]/.test(value)) {
		throw new Error(`var ${name} cannot go through an env file: it contains ', $ or a line break`);
	}
	return `${name}='${value}'`;
}

function exited(child: ChildProcess): Promise<void> {
	if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
	return new Promise((done) => child.once("exit", () => done()));
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
	if (child.pid === undefined) return;
	try {
		process.kill(-child.pid, signal);
	} catch {
		// The group is already gone.
	}
}

async function untilAnswering(
	origin: string,
	child: ChildProcess,
	timeoutMs: number,
	logFile: string,
): Promise<void> {
	const deadline = performance.now() + timeoutMs;
	while (performance.now() < deadline) {
		if (child.exitCode !== null || child.signalCode !== null) {
			const log = await readFile(logFile, "utf8");
			throw new Error(`wrangler dev exited during startup (${child.exitCode}):\n${log}`);
		}
		try {
			const response = await fetch(`${origin}/`, { signal: AbortSignal.timeout(2_000) });
			await response.body?.cancel();
			if (response.ok) return;
		} catch {
			// Not listening yet.
		}
		await new Promise((wait) => setTimeout(wait, POLL_INTERVAL_MS));
	}
	const log = await readFile(logFile, "utf8");
	throw new Error(`wrangler dev did not answer at ${origin} within ${timeoutMs} ms:\n${log}`);
}

/**
 * Builds the Worker (or a bench entry that wraps it) once into `directory` and copies
 * wrangler.toml beside it. wrangler dev then serves that snapshot: edits to src/ or wrangler.toml
 * during a run cannot restart the Worker mid-request (a restart answers every open request with
 * a 503).
 */
async function snapshotWorker(
	directory: string,
	logFile: string,
	entry: string | undefined,
): Promise<{ script: string; config: string }> {
	const outdir = join(directory, "bundle");
	const entryArgs =
		entry === undefined
			? []
			: [
					relative(PROJECT_ROOT, resolve(PROJECT_ROOT, entry)),
					"--alias",
					`${TOLLBOOTH_MODULE}:./src/index.ts`,
				];
	const log = openSync(logFile, "w");
	const build = spawn(
		process.execPath,
		[
			WRANGLER_CLI,
			"deploy",
			...entryArgs,
			"--config",
			WRANGLER_TOML,
			"--env",
			DEV_ENV,
			"--dry-run",
			"--outdir",
			outdir,
			// A profile with the functions' own names: BENCH_UNMINIFIED=1.
			...(process.env.BENCH_UNMINIFIED ? ["--no-minify"] : []),
		],
		{
			cwd: PROJECT_ROOT,
			env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
			stdio: ["ignore", log, log],
		},
	);
	closeSync(log);
	const code = await new Promise<number | null>((done) => build.once("exit", done));
	if (code !== 0) {
		throw new Error(`building the Worker failed (${code}):\n${await readFile(logFile, "utf8")}`);
	}
	const config = join(directory, "wrangler.toml");
	await copyFile(WRANGLER_TOML, config);
	// [assets] directory is relative to the configuration: the dashboard's files go beside it.
	await cp(join(PROJECT_ROOT, "public"), join(directory, "public"), { recursive: true });
	// Without an entry: [env.dev]'s main, src/dev.ts (the gateway with the built-in mock).
	const script = basename(entry ?? "src/dev.ts").replace(/\.ts$/, ".js");
	return { script: join(outdir, script), config };
}

export async function startWranglerDev(options: WranglerDevOptions): Promise<WranglerDev> {
	const [port, inspectorPort] = [await freePort(), await freePort()];
	const origin = `http://127.0.0.1:${port}`;
	const config = typeof options.config === "function" ? options.config(origin) : options.config;
	const vars: Record<string, string> = { TOLLBOOTH_CONFIG: JSON.stringify(config) };
	for (const [name, value] of Object.entries(options.vars ?? {})) vars[name] = String(value);

	const directory = await mkdtemp(join(tmpdir(), "tollbooth-dev-"));
	const envFile = join(directory, "vars.env");
	const logFile = join(directory, "wrangler.log");
	const lines = Object.entries(vars).map(([name, value]) => envLine(name, value));
	await writeFile(envFile, `${lines.join("\n")}\n`);

	const snapshot = await snapshotWorker(directory, logFile, options.entry).catch(
		async (error: unknown) => {
			await rm(directory, { recursive: true, force: true });
			throw error;
		},
	);
	const log = openSync(logFile, "w");
	const env: NodeJS.ProcessEnv = {
		...process.env,
		WRANGLER_SEND_METRICS: "false",
		CLOUDFLARE_LOAD_DEV_VARS_FROM_DOT_ENV: "true",
	};
	// Only the env file may set vars: the caller's own environment must not leak into the Worker.
	delete env.CLOUDFLARE_INCLUDE_PROCESS_ENV;
	const child = spawn(
		process.execPath,
		[
			WRANGLER_CLI,
			"dev",
			snapshot.script,
			"--no-bundle",
			"--config",
			snapshot.config,
			"--env",
			DEV_ENV,
			"--ip",
			"127.0.0.1",
			"--port",
			String(port),
			"--inspector-port",
			String(inspectorPort),
			"--persist-to",
			join(directory, "state"),
			"--env-file",
			envFile,
			"--log-level",
			options.logLevel ?? "warn",
			"--show-interactive-dev-session=false",
		],
		{ cwd: directory, env, detached: true, stdio: ["ignore", log, log] },
	);
	closeSync(log);
	// If this process dies first, workerd must not outlive it.
	const killOnExit = () => killGroup(child, "SIGKILL");
	process.once("exit", killOnExit);

	const stop = async () => {
		process.off("exit", killOnExit);
		killGroup(child, "SIGTERM");
		const forced = setTimeout(() => killGroup(child, "SIGKILL"), STOP_GRACE_MS);
		await exited(child);
		clearTimeout(forced);
		// workerd may linger a moment after wrangler itself has gone.
		killGroup(child, "SIGKILL");
		await rm(directory, { recursive: true, force: true });
	};

	try {
		await untilAnswering(origin, child, options.readyTimeoutMs ?? 60_000, logFile);
	} catch (error) {
		await stop();
		throw error;
	}
	return { origin, logFile, pid: child.pid ?? 0, stop };
}
