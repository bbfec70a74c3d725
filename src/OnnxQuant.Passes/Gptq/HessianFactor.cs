using System.Numerics.Tensors;
using OnnxQuant.Numerics;

namespace OnnxQuant.Gptq;

/// <summary>
/// What GPTQ needs from the input rows of a linear: the upper Cholesky factor U of H⁻¹ (H = XᵀX / R, dampened, in the
/// rounding order), so that row i's error is spread onto later rows j by U[i, j] / U[i, i]. Computed without forming H⁻¹:
/// with P the order reversal, chol(P H P) = L gives H⁻¹ = Uᵀ U for U = P L⁻¹ P (docs/architecture.md, "GPTQ").
/// One factor serves every linear that reads the same input (q, k and v share it).
/// </summary>
public sealed class HessianFactor
{
    private HessianFactor(int k, float[] upper, int[]? order, float dampening, int deadInputs)
    {
        K = k;
        Upper = upper;
        Order = order;
        Dampening = dampening;
        DeadInputs = deadInputs;
    }

    public int K { get; }

    /// <summary>U, [K, K] row-major, upper triangular (the lower part is zero), in rounding order.</summary>
    public float[] Upper { get; }

    /// <summary>Rounding order (act-order): position a rounds input row Order[a]; null for 0..K-1.</summary>
    public int[]? Order { get; }

    /// <summary>The dampening fraction actually used (raised tenfold while the factorisation failed).</summary>
    public float Dampening { get; }

    /// <summary>Inputs never active in the rows (zero diagonal): given diagonal 1, so they round to nearest.</summary>
    public int DeadInputs { get; }

    /// <summary>H = XᵀX / R from the rows <paramref name="x"/> [R, K], then <see cref="Factor"/>.</summary>
    public static HessianFactor FromRows(MatrixView x, GptqOptions options) => Factor(SecondMoment(x), x.Cols, options);

    /// <summary>H = XᵀX / R of the rows <paramref name="x"/> [R, K], row-major [K, K]; <see cref="Factor"/> leaves it usable for another dampening.</summary>
    public static float[] SecondMoment(MatrixView x)
    {
        int k = x.Cols, r = x.Rows;
        if (r == 0)
            throw new ArgumentException("GPTQ needs at least one input row");
        var transposed = new float[(long)k * r];
        for (int row = 0; row < r; row++)
        {
            var src = x.Data.AsSpan(x.Offset + row * x.Stride, k);
            for (int c = 0; c < k; c++) transposed[(long)c * r + row] = src[c];
        }
        var h = MatrixMultiply.Multiply(MatrixView.Of(transposed, k, r), x);
        TensorPrimitives.Divide(h, r, h);
        return h;
    }

    /// <summary>
    /// Factors <paramref name="hessian"/> ([K, K], symmetric). It is read, not overwritten, except that a zero diagonal
    /// entry (a dead input) becomes 1 — the same for every call, so one H serves several dampenings.
    /// </summary>
    public static HessianFactor Factor(float[] hessian, int k, GptqOptions options)
    {
        options.Validate();
        int dead = 0;
        double diagonalSum = 0;
        for (int i = 0; i < k; i++)
        {
            ref float d = ref hessian[(long)i * k + i];
            if (d <= 0f)
            {
                d = 1f;
                dead++;
            }
            diagonalSum += d;
        }
        int[]? order = null;
        if (options.ActOrder)
        {
            var diagonal = new float[k];
            for (int i = 0; i < k; i++) diagonal[i] = hessian[(long)i * k + i];
            // Stable: equal diagonals keep their input order, so the order (and the result) is deterministic.
            order = Enumerable.Range(0, k).OrderByDescending(i => diagonal[i]).ThenBy(i => i).ToArray();
        }
        float mean = (float)(diagonalSum / k);
        float damp = options.Dampening;
        var work = new float[(long)k * k];
        for (int attempt = 0; ; attempt++)
        {
            // Reversed (and act-ordered) copy with dampening: work[a, b] = H[o(K-1-a), o(K-1-b)] + damp·mean·δ.
            for (int a = 0; a < k; a++)
            {
                int ia = Source(order, k - 1 - a);
                var dst = work.AsSpan(a * k, k);
                for (int b = 0; b < k; b++) dst[b] = hessian[(long)ia * k + Source(order, k - 1 - b)];
                dst[a] += damp * mean;
            }
            if (Cholesky.TryFactorInPlace(work, k))
                break;
            if (attempt == 6)
                throw new OnnxQuantException(null, $"GPTQ: the input's second-moment matrix ({k} inputs) is not positive definite even with dampening {damp:g3}; use --method awq or rtn", ExitCode.Unsupported);
            damp *= 10f;
        }
        var inverseT = Cholesky.InvertLowerTransposed(work, k);
        // U[i, j] = L⁻¹[K-1-i, K-1-j] = inverseT[K-1-j, K-1-i]; reuse the factor's buffer.
        var upper = work;
        ParallelWork.For(k, (long)k * k, i =>
        {
            var row = upper.AsSpan(i * k, k);
            row[..i].Clear();
            for (int j = i; j < k; j++) row[j] = inverseT[(long)(k - 1 - j) * k + (k - 1 - i)];
        });
        return new HessianFactor(k, upper, order, damp, dead);
    }

    private static int Source(int[]? order, int position) => order is null ? position : order[position];
}
