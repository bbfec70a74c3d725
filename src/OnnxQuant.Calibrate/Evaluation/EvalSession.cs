using System.Runtime.InteropServices;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using OnnxQuant.Calibrate.Data;
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
        var output = Run(InputFeeds.Build(Session.InputMetadata, [ids], Label, Stage), ids.Length,
            Stage == RunStage.Verification ? "a held-out window" : "a window");
        if (output.Shape.Length < 2 || output.Shape[^2] != ids.Length)
            throw new OnnxQuantException(Label,
                $"output '{Output}' has shape [{string.Join(",", output.Shape)}] for {ids.Length} input tokens; expected [1, {ids.Length}, width]", ExitCode.Unsupported);
        return output;
    }

    /// <summary>Runs sample <paramref name="index"/> of non-text feeds (.npz) and returns the measured output, [1, ..., width].</summary>
    public EvalOutput Run(ArrayFeeds feeds, int index)
    {
        var output = Run(feeds.Build(Session.InputMetadata, index, 1, Label), 0, $"sample {index + 1}");
        if (output.Shape.Length < 2)
            throw new OnnxQuantException(Label, $"output '{Output}' has shape [{string.Join(",", output.Shape)}]; expected [1, ..., width]", ExitCode.Unsupported);
        return output;
    }

    private EvalOutput Run((List<string> Names, List<OrtValue> Values) feeds, int length, string what)
    {
        var (names, values) = feeds;
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
            return new EvalOutput(data, info.Shape, Label);
        }
        catch (OnnxRuntimeException e)
        {
            throw OrtFailures.Translate(e, Label, Stage, length, what);
        }
        finally
        {
            foreach (var v in values) v.Dispose();
        }
    }

    /// <summary>float16 values as float32 (also the numeric diff's conversion).</summary>
    internal static float[] ToFloats(ReadOnlySpan<Float16> half)
    {
        var result = new float[half.Length];
        System.Numerics.Tensors.TensorPrimitives.ConvertToSingle(MemoryMarshal.Cast<Float16, Half>(half), result);
        return result;
    }
}
