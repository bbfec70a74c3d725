using OnnxQuant.IO;
using OnnxQuant.Quantization;
using OnnxQuant.Smoothing;

namespace OnnxQuant.Awq;

/// <summary>
/// Runs the subgraph a smoothing group feeds (the attention block for q/k/v, the MLP for gate/up) so AWQ's scale
/// search can score a candidate by the block's output error rather than by each linear's own output. Passes never
/// reference ONNX Runtime; the Calibrate project implements this with it.
/// </summary>
public interface IBlockEvaluator
{
    /// <summary>
    /// A loss for <paramref name="group"/>, or null when the graph has no block this evaluator can run for it (then the
    /// group-output loss is used). The model is read only, as it is now (earlier groups already folded).
    /// </summary>
    IBlockLoss? TryCreate(OnnxModel model, SmoothingGroup group);
}

/// <summary>The block loss of one group; disposed after the group's search.</summary>
public interface IBlockLoss : IDisposable
{
    /// <summary>What is measured, for reports (e.g. "attention output").</summary>
    string Description { get; }

    /// <summary>
    /// Mean squared error of the block output when the group's activation is divided by <paramref name="scales"/> and its
    /// consumers' weights are <c>Q(diag(s) W)</c> under <paramref name="quantization"/>, against the unquantized block.
    /// </summary>
    double Loss(float[] scales, Int4QuantOptions quantization);
}
