/** Prints the location and note of the tuning store at `Deno.args[0]` (run by tuning_file_test). */
import { defaultStore } from "../engine/tune/store.ts";
const s = defaultStore(Deno.args[0]);
console.log(`${s.location}|${s.note}`);
