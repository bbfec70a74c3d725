namespace OnnxQuant.Smoothing;

/// <summary>SmoothQuant's per-channel scale and the outlier measure the report shows.</summary>
public static class SmoothQuantScales
{
    /// <summary>Smallest scale SmoothQuant allows (its reference clamps there).</summary>
    public const float MinScale = 1e-5f;

    /// <summary>
    /// <c>s_j = max|X_j|^alpha / max|W_j|^(1-alpha)</c>, clamped to at least <see cref="MinScale"/>. A channel that is
    /// zero in the activation or in every weight row gets 1: there is nothing to balance.
    /// </summary>
    public static float[] Compute(ReadOnlySpan<float> activationAbsMax, ReadOnlySpan<float> weightRowAbsMax, float alpha)
    {
        if (activationAbsMax.Length != weightRowAbsMax.Length)
            throw new ArgumentException($"smoothing: {activationAbsMax.Length} activation channels, {weightRowAbsMax.Length} weight rows");
        if (!(alpha >= 0f && alpha <= 1f))
            throw new ArgumentOutOfRangeException(nameof(alpha), alpha, "alpha must be in [0, 1]");
        var s = new float[activationAbsMax.Length];
        for (int j = 0; j < s.Length; j++)
        {
            double a = activationAbsMax[j], w = weightRowAbsMax[j];
            if (!(a > 0) || !(w > 0) || !double.IsFinite(a) || !double.IsFinite(w))
            {
                s[j] = 1f;
                continue;
            }
            double v = Math.Pow(a, alpha) / Math.Pow(w, 1 - alpha);
            s[j] = (float)Math.Clamp(v, MinScale, 1e30);
        }
        return s;
    }

    /// <summary>max_j v_j / median_j v_j: how far the worst channel stands out (1 = flat).</summary>
    public static float MaxOverMedian(ReadOnlySpan<float> values)
    {
        if (values.IsEmpty)
            return float.NaN;
        var sorted = values.ToArray();
        Array.Sort(sorted);
        int n = sorted.Length;
        float median = n % 2 == 1 ? sorted[n / 2] : 0.5f * (sorted[n / 2 - 1] + sorted[n / 2]);
        return median > 0 ? sorted[^1] / median : float.PositiveInfinity;
    }

    /// <summary>The activation's per-channel max after dividing by s.</summary>
    public static float[] Divide(ReadOnlySpan<float> absMax, ReadOnlySpan<float> scale)
    {
        var result = new float[absMax.Length];
        System.Numerics.Tensors.TensorPrimitives.Divide(absMax, scale, result);
        return result;
    }
}
