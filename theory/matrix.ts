/**
 * Row-matrix input accepted by the float64 reference routines: either an array of rows, or a
 * flat row-major buffer (e.g. a Float32Array read back from the GPU) with its row length.
 *
 * @module
 */

/** A flat row-major matrix: `data.length` must be a multiple of `dim`. */
export interface FlatMatrix {
  /** Row-major values. */
  data: ArrayLike<number>;
  /** Row length (number of columns). */
  dim: number;
}

/** Rows as an array of vectors, or a flat row-major buffer with its row length. */
export type MatrixLike = ReadonlyArray<ArrayLike<number>> | FlatMatrix;

function isFlat(m: MatrixLike): m is FlatMatrix {
  return !Array.isArray(m) && typeof (m as FlatMatrix).dim === "number";
}

/**
 * Views a {@link MatrixLike} as an array of rows (typed-array rows are zero-copy subarrays).
 *
 * @param m the matrix
 * @returns its rows; all rows have the same length
 * @throws RangeError for ragged rows or a flat buffer whose length is not a multiple of dim
 */
export function toRows(m: MatrixLike): ArrayLike<number>[] {
  if (isFlat(m)) {
    const { data, dim } = m;
    if (!Number.isInteger(dim) || dim < 1) {
      throw new RangeError(`toRows: dim must be an integer >= 1 (got ${dim})`);
    }
    if (data.length % dim !== 0) {
      throw new RangeError(`toRows: data length ${data.length} is not a multiple of dim=${dim}`);
    }
    const n = data.length / dim;
    const rows: ArrayLike<number>[] = [];
    const sub = (data as Float64Array).subarray;
    for (let i = 0; i < n; i++) {
      rows.push(
        typeof sub === "function"
          ? (data as Float64Array).subarray(i * dim, (i + 1) * dim)
          : Array.prototype.slice.call(data, i * dim, (i + 1) * dim) as number[],
      );
    }
    return rows;
  }
  const rows = Array.from(m as ReadonlyArray<ArrayLike<number>>);
  if (rows.length > 0) {
    const d = rows[0].length;
    for (let i = 1; i < rows.length; i++) {
      if (rows[i].length !== d) {
        throw new RangeError(`toRows: row ${i} has length ${rows[i].length}, expected ${d}`);
      }
    }
  }
  return rows;
}
