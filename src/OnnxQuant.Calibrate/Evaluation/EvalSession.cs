using Microsoft.ML.OnnxRuntime;
using OnnxQuant.Calibrate.Verification;

namespace OnnxQuant.Calibrate.Evaluation;

/// <summary>A model opened for evaluation: its session, the output measured and the path used in messages.</summary>
internal sealed record EvalSession(InferenceSession Session, string Output, string Label)
{
    /// <summary>Runs one sequence and returns the measured output ([1, sequence, width]).</summary>
    public (float[] Values, long[] Shape) Run(int[] ids)
    {
        var result = Verifier.Run(Session, ids, Output, Label);
        if (result.Shape.Length < 2 || result.Shape[^2] != ids.Length)
            throw new OnnxQuantException(Label,
                $"output '{Output}' has shape [{string.Join(",", result.Shape)}] for {ids.Length} input tokens; expected [1, {ids.Length}, width]", ExitCode.Unsupported);
        return result;
    }
}
