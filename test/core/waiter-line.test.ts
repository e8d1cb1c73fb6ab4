// Unit tests of the waiter line: submission order, slotting in older waiters, lazy removal.
import { describe, expect, it } from "vitest";
import { type InLine, WaiterLine } from "../../src/core/waiter-line.ts";

interface Waiting extends InLine {
	id: string;
}

let seq = 0;
function waiter(id: string, submittedMs: number): Waiting {
	return { id, submittedMs, seq: ++seq, waiting: true };
}

function leave(line: WaiterLine<Waiting>, waiting: Waiting): void {
	waiting.waiting = false;
	line.left();
}

describe("waiter line", () => {
	it("keeps submission order, slotting an older re-submission in its place", () => {
		const line = new WaiterLine<Waiting>();
		for (const [id, atMs] of [
			["a", 10],
			["c", 30],
			["d", 40],
		] as const) {
			line.add(waiter(id, atMs));
		}
		line.add(waiter("b", 20));
		line.add(waiter("first", 0));
		line.add(waiter("d2", 40)); // same time: after d, by arrival
		expect([...line].map(({ id }) => id)).toEqual(["first", "a", "b", "c", "d", "d2"]);
		expect(line.front()?.id).toBe("first");
		expect(line.back()?.id).toBe("d2");
		expect(line.size).toBe(6);
	});

	it("skips departed waiters at both ends and in the middle", () => {
		const line = new WaiterLine<Waiting>();
		const all = ["a", "b", "c", "d"].map((id, i) => waiter(id, i));
		for (const one of all) line.add(one);
		leave(line, all[0] as Waiting);
		leave(line, all[3] as Waiting);
		leave(line, all[1] as Waiting);
		expect(line.front()?.id).toBe("c");
		expect(line.back()?.id).toBe("c");
		expect([...line].map(({ id }) => id)).toEqual(["c"]);
		leave(line, all[2] as Waiting);
		expect(line.front()).toBeUndefined();
		expect(line.back()).toBeUndefined();
		expect(line.size).toBe(0);
	});

	it("stays in order through long churn with removals from the middle", () => {
		const line = new WaiterLine<Waiting>();
		const waiting: Waiting[] = [];
		for (let round = 0; round < 20_000; round++) {
			const one = waiter(`w${round}`, round);
			line.add(one);
			waiting.push(one);
			if (round % 3 === 0) {
				const middle = waiting.splice(Math.floor(waiting.length / 2), 1)[0] as Waiting;
				leave(line, middle);
			}
			const first = waiting[0];
			if (round % 2 === 0 && first) leave(line, waiting.shift() ?? first);
		}
		expect(line.size).toBe(waiting.length);
		expect([...line].map(({ id }) => id)).toEqual(waiting.map(({ id }) => id));
		expect(line.front()).toBe(waiting[0]);
		expect(line.back()).toBe(waiting[waiting.length - 1]);
	});
});
