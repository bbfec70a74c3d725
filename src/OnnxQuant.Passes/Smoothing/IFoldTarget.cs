using OnnxQuant.IR;

namespace OnnxQuant.Smoothing;

/// <summary>How a group's per-channel scale reaches its activation.</summary>
public enum FoldKind
{
    /// <summary>Into a norm's gamma (and beta): LayerNorm, RMSNorm, their Skip* and decomposed forms.</summary>
    NormGamma,
    /// <summary>Into a preceding linear's output columns (and bias), directly or through a channel-preserving path.</summary>
    LinearColumns,
    /// <summary>A new <c>Mul(x, 1/s)</c> in front of the group's linears (the activation has other readers).</summary>
    InsertedMul,
}

/// <summary>
/// The place a smoothing scale is folded into: <see cref="Apply"/> makes channel j of the group's activation (as the
/// group's linears read it) come out divided by <c>s[j]</c>. The consumers' weight rows are scaled separately
/// (<see cref="SmoothingGroup.Apply"/> does both).
/// </summary>
public interface IFoldTarget
{
    FoldKind Kind { get; }

    /// <summary>A short description for tables: what is scaled (e.g. "LayerNorm 'ln_1' gamma+beta").</summary>
    string Description { get; }

    /// <summary>
    /// True when folding leaves the model's outputs unchanged up to float rounding. Targets that the finder builds for a
    /// graph are exact; a target checked against a graph that changed since may not be.
    /// </summary>
    bool IsExact(Graph graph);

    /// <summary>Divides channel j of the activation by <paramref name="scale"/>[j] (all entries must be finite and positive).</summary>
    void Apply(Graph graph, ReadOnlySpan<float> scale);
}
