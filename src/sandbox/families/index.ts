/** The sandbox's task families, in the order of the docs table. */
import type { Family } from "../task.js";
import { constraintsFamily } from "./constraints.js";
import { increasingFamily } from "./increasing.js";
import { pathFamily } from "./path.js";
import { sortFamily } from "./sort.js";
import { spacedFamily } from "./spaced.js";
import { sumFamily } from "./sum.js";

export const allFamilies: readonly Family[] = [pathFamily, sumFamily, increasingFamily, spacedFamily, constraintsFamily, sortFamily];

/** The families with these names, in the given order; an unknown name is an error listing the known ones. */
export function familiesByName(names: readonly string[]): Family[] {
  return names.map((n) => {
    const f = allFamilies.find((x) => x.name === n);
    if (!f) throw new Error(`unknown sandbox family "${n}" (known: ${allFamilies.map((x) => x.name).join(", ")})`);
    return f;
  });
}
