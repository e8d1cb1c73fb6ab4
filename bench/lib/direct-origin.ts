// The Worker's own local server under `wrangler dev`, behind wrangler's ProxyWorker. That proxy
// forwards each request with a fetch detached from the caller's connection, so a caller's leaving
// never reaches the Worker (request.signal stays quiet); requests sent here behave as in production.
import { readdir, readFile, readlink } from "node:fs/promises";
import type { WranglerDev } from "./wrangler-dev.ts";

/** Process ids in process group `group` (wrangler and the workerd processes it started). */
async function processGroup(group: number): Promise<number[]> {
	const pids: number[] = [];
	for (const entry of await readdir("/proc")) {
		if (!/^\d+$/.test(entry)) continue;
		const stat = await readFile(`/proc/${entry}/stat`, "utf8").catch(() => "");
		// Fields after the parenthesised command: state, ppid, pgrp.
		const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
		if (Number(fields[2]) === group) pids.push(Number(entry));
	}
	return pids;
}

/** Loopback ports that processes `pids` listen on (Linux /proc only). */
async function listeningPorts(pids: number[]): Promise<number[]> {
	const inodes = new Set<string>();
	for (const pid of pids) {
		const fds = await readdir(`/proc/${pid}/fd`).catch(() => []);
		for (const fd of fds) {
			const link = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => "");
			const inode = /^socket:\[(\d+)\]$/.exec(link)?.[1];
			if (inode) inodes.add(inode);
		}
	}
	const table = await readFile("/proc/net/tcp", "utf8");
	const ports: number[] = [];
	for (const line of table.split("\n").slice(1)) {
		const columns = line.trim().split(/\s+/);
		const [address, port] = (columns[1] ?? "").split(":");
		if (address === "0100007F" && columns[3] === "0A" && inodes.has(columns[9] ?? "")) {
			ports.push(Number.parseInt(port ?? "", 16));
		}
	}
	return ports;
}

/** The origin of the Worker's own server: the listening port that answers `/` as the proxy does. */
export async function directOrigin(dev: WranglerDev): Promise<string> {
	const expected = await (await fetch(`${dev.origin}/`)).text();
	const proxyPort = Number(new URL(dev.origin).port);
	for (const port of await listeningPorts(await processGroup(dev.pid))) {
		if (port === proxyPort) continue;
		const origin = `http://127.0.0.1:${port}`;
		const answer = await fetch(`${origin}/`, { signal: AbortSignal.timeout(2_000) })
			.then((response) => response.text())
			.catch(() => undefined);
		if (answer === expected) return origin;
	}
	throw new Error(`no port of wrangler dev (${dev.origin}) answers / as the Worker does`);
}
