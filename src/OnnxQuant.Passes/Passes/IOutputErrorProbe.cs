using OnnxQuant.Analysis;
using OnnxQuant.IO;

namespace OnnxQuant.Passes;

/// <summary>What mixed precision ranks linears by.</summary>
public enum BitsSensitivity
{
    /// <summary>Each linear's own relative output error on held-out calibration rows (no session; any model size).</summary>
    LinearOutput,

    /// <summary>
    /// The relative error of the model's output when that linear alone is rounded (one ONNX Runtime session over the whole
    /// model, through <see cref="IOutputErrorProbe"/>): what the error does after attention, activations and norms.
    /// </summary>
    ModelOutput,

    /// <summary>
    /// <see cref="ModelOutput"/> where it is affordable (<see cref="BitsSensitivities.Resolve"/>), else
    /// <see cref="LinearOutput"/>; resolved once the model is loaded, before the pipeline runs.
    /// </summary>
    Auto,
}

public static class BitsSensitivities
{
    /// <summary>
    /// Linears x parameters up to which the model-output ranking runs: its cost is one forward pass of the probe windows
    /// per linear and choice, so it grows with both (bench/results.md has its pass times).
    /// </summary>
    public const double ModelOutputBudget = 2e9;

    /// <summary>The ranking <paramref name="sensitivity"/> amounts to for a model of this many linears and parameters.</summary>
    public static BitsSensitivity Resolve(BitsSensitivity sensitivity, int linears, long parameters) =>
        sensitivity != BitsSensitivity.Auto ? sensitivity
        : (double)linears * parameters <= ModelOutputBudget ? BitsSensitivity.ModelOutput
        : BitsSensitivity.LinearOutput;
}

/// <summary>
/// Runs the model with one linear's weight replaced and says how far its output moved, so mixed precision can rank
/// linears by their effect on what the model computes. Passes never reference ONNX Runtime; Calibrate implements this
/// with it, and the command puts it in the pipeline's analyses.
/// </summary>
public interface IOutputErrorProbe
{
    /// <summary>A probe over <paramref name="model"/> as it is now (earlier passes applied) for these linears' weights.</summary>
    IOutputErrorSession Open(OnnxModel model, IReadOnlyList<LinearNode> linears);
}

/// <summary>One open probe; disposed when the plan is made.</summary>
public interface IOutputErrorSession : IDisposable
{
    /// <summary>The output measured (for reports).</summary>
    string Output { get; }

    /// <summary>
    /// ‖Y' − Y‖² / ‖Y‖² of the measured output over the probe's inputs, where Y' is the model with
    /// <paramref name="linear"/>'s weight replaced by <paramref name="weightKN"/> ([K, N], row-major) and every other
    /// weight as it is.
    /// </summary>
    double RelativeError(LinearNode linear, float[] weightKN);
}
