using System.Text.RegularExpressions;
using Microsoft.ML.OnnxRuntime;

namespace OnnxQuant.Calibrate.Sessions;

/// <summary>What a run of the model was for; decides which option a failure's hint names.</summary>
public enum RunStage
{
    /// <summary>Calibration (`calibrate`, `smooth`, `awq`): windows of --seq-len tokens.</summary>
    Calibration,
    /// <summary>The held-out check after `smooth`/`awq`: windows of --verify-length tokens.</summary>
    Verification,
    /// <summary>`eval`: windows of --context tokens.</summary>
    Evaluation,
    /// <summary>`diff --numeric`: samples of --seq-len tokens.</summary>
    Diff,
}

/// <summary>What an ONNX Runtime run failure most likely means.</summary>
public enum OrtFailureKind
{
    /// <summary>Shapes inside the graph disagree: a sequence longer than a fixed table or dimension of the model.</summary>
    SequenceTooLong,
    /// <summary>A Gather index outside its table: a token id at or above the vocabulary, or a position past the table.</summary>
    IndexOutOfRange,
    OutOfMemory,
    MissingInput,
    Other,
}

/// <summary>
/// ONNX Runtime's run failures in our words: one paragraph with the likely cause and the option of the running command
/// that fixes it. ORT's own message (source paths, status codes) stays in the inner exception, printed with --verbose.
/// </summary>
public static partial class OrtFailures
{
    /// <summary>The option that sets the sequence length at <paramref name="stage"/> (each command has the one of its stage).</summary>
    public static string LengthOption(RunStage stage) => stage switch
    {
        RunStage.Calibration or RunStage.Diff => "--seq-len",
        RunStage.Verification => "--verify-length",
        _ => "--context",
    };

    public static OrtFailureKind Classify(string message)
    {
        if (message.Contains("Failed to allocate", StringComparison.OrdinalIgnoreCase) || message.Contains("bad_alloc", StringComparison.Ordinal)
            || message.Contains("out of memory", StringComparison.OrdinalIgnoreCase))
            return OrtFailureKind.OutOfMemory;
        if (message.Contains("out of data bounds", StringComparison.Ordinal) || message.Contains("indices element out of", StringComparison.Ordinal))
            return OrtFailureKind.IndexOutOfRange;
        if (message.Contains("Missing Input", StringComparison.OrdinalIgnoreCase) || message.Contains("Missing required input", StringComparison.OrdinalIgnoreCase))
            return OrtFailureKind.MissingInput;
        if (message.Contains("broadcast", StringComparison.OrdinalIgnoreCase) || message.Contains("Invalid input shape", StringComparison.Ordinal)
            || message.Contains("shape mismatch", StringComparison.OrdinalIgnoreCase) || message.Contains("The input tensor cannot be reshaped", StringComparison.Ordinal)
            || message.Contains("Got invalid dimensions", StringComparison.Ordinal) || message.Contains("MatMul dimension mismatch", StringComparison.Ordinal))
            return OrtFailureKind.SequenceTooLong;
        return OrtFailureKind.Other;
    }

    /// <summary>
    /// The failure of a run of <paramref name="label"/> at <paramref name="length"/> tokens as an <see cref="OnnxQuantException"/>.
    /// <paramref name="what"/> says which run ("calibration sample 1").
    /// </summary>
    public static OnnxQuantException Translate(OnnxRuntimeException e, string label, RunStage stage, int length, string what)
    {
        string option = LengthOption(stage);
        string node = NodeOf(e.Message) is { } n ? $" (in node '{n.Name}', a {n.Op})" : "";
        return Classify(e.Message) switch
        {
            OrtFailureKind.SequenceTooLong => new OnnxQuantException(label,
                $"ONNX Runtime could not run {what} of {length} tokens: shapes inside the model do not fit together{node}. This usually means the " +
                $"sequence is longer than the model was exported for (a fixed position or RoPE table, or a fixed input size); give a shorter {option}",
                ExitCode.Usage, e),
            OrtFailureKind.IndexOutOfRange => new OnnxQuantException(label,
                $"ONNX Runtime could not run {what}: a Gather index is outside its table{node}. Either a token id is at or above the model's vocabulary " +
                $"(ids made with another tokenizer), or a position is past the model's position table (give a shorter {option})",
                ExitCode.BadInput, e),
            OrtFailureKind.OutOfMemory => new OnnxQuantException(label,
                $"ONNX Runtime ran out of memory running {what} of {length} tokens{node}; give a shorter {option}, or free memory on the device (--device cpu uses main memory)",
                ExitCode.Unsupported, e),
            OrtFailureKind.MissingInput => new OnnxQuantException(label,
                $"ONNX Runtime could not run {what}: the model needs an input OnnxQuant does not fill{node}. OnnxQuant fills input_ids, attention_mask, " +
                "position_ids, token_type_ids, past_key_values.* and boolean flags; a model with other inputs needs re-exporting with those names",
                ExitCode.Unsupported, e),
            _ => new OnnxQuantException(label,
                $"ONNX Runtime failed to run {what} of {length} tokens{node}; the model may use an op or type this ONNX Runtime build does not run " +
                "(rerun with --verbose for ONNX Runtime's own message)",
                ExitCode.Unsupported, e),
        };
    }

    private static (string Op, string Name)? NodeOf(string message) =>
        NodeName().Match(message) is { Success: true } m ? (m.Groups[1].Value, m.Groups[2].Value) : null;

    [GeneratedRegex(@"running (\S+) node\. Name:'([^']*)'")]
    private static partial Regex NodeName();
}
