using System.Runtime.InteropServices;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using OnnxQuant.Calibrate.Recording;
using OnnxQuant.Calibrate.Sessions;

namespace OnnxQuant.Calibrate.Evaluation;

/// <summary>One run's measured output as float32, shaped [1, sequence, width], and the model it came from.</summary>
internal sealed record EvalOutput(float[] Values, long[] Shape, string Label);

/// <summary>A model opened for evaluation: its session, the output measured, the path used in messages and what the runs are for.</summary>
internal sealed record EvalSession(InferenceSession Session, string Output, string Label, RunStage Stage)
{
    /// <summary>Runs one sequence and returns the measured output ([1, sequence, width]).</summary>
    public EvalOutput Run(int[] ids)
    {
        var (names, values) = InputFeeds.Build(Session.InputMetadata, [ids], Label, Stage);
        try
        {
            using var runOptions = new RunOptions();
            using var results = Session.Run(runOptions, names, values, [Output]);
            var info = results[0].GetTensorTypeAndShape();
            float[] data = info.ElementDataType switch
            {
                TensorElementType.Float => results[0].GetTensorDataAsSpan<float>().ToArray(),
                TensorElementType.Float16 => ToFloats(results[0].GetTensorDataAsSpan<Float16>()),
                _ => throw new OnnxQuantException(Label, $"output '{Output}' is {info.ElementDataType}, not float", ExitCode.Unsupported),
            };
            var shape = info.Shape;
            if (shape.Length < 2 || shape[^2] != ids.Length)
                throw new OnnxQuantException(Label,
                    $"output '{Output}' has shape [{string.Join(",", shape)}] for {ids.Length} input tokens; expected [1, {ids.Length}, width]", ExitCode.Unsupported);
            return new EvalOutput(data, shape, Label);
        }
        catch (OnnxRuntimeException e)
        {
            throw OrtFailures.Translate(e, Label, Stage, ids.Length, Stage == RunStage.Verification ? "a held-out window" : "a window");
        }
        finally
        {
            foreach (var v in values) v.Dispose();
        }
    }

    internal static float[] ToFloats(ReadOnlySpan<Float16> half)
    {
        var result = new float[half.Length];
        System.Numerics.Tensors.TensorPrimitives.ConvertToSingle(MemoryMarshal.Cast<Float16, Half>(half), result);
        return result;
    }
}
