using Microsoft.ML.OnnxRuntime;
using OnnxQuant.Analysis;
using OnnxQuant.Calibrate.Sessions;
using OnnxQuant.IO;

namespace OnnxQuant.Calibrate.Evaluation;

/// <summary>
/// A model and, optionally, the reference it is compared with, opened for measuring: both sessions, what kind of model
/// it is and which output is measured. `eval` and the verification after smooth/awq both open their models here.
/// </summary>
internal sealed class ModelPair : IDisposable
{
    private readonly OpenedSession _model;
    private readonly OpenedSession? _reference;

    private ModelPair(OpenedSession model, OpenedSession? reference, ModelKind kind, EvalSession session, EvalSession? referenceSession)
    {
        (_model, _reference, Kind, Model, Reference) = (model, reference, kind, session, referenceSession);
    }

    public ModelKind Kind { get; }

    public EvalSession Model { get; }

    /// <summary>Null when only the model is measured.</summary>
    public EvalSession? Reference { get; }

    public string Output => Model.Output;

    public string Device => _model.Device;

    public string? Notice => _model.Notice;

    /// <summary>Opens both; the reference must be of the same kind and have the model's measured output.</summary>
    public static ModelPair Open(string modelPath, string? referencePath, SessionSettings settings, RunStage stage)
    {
        var model = OpenChecked(modelPath, settings);
        OpenedSession? reference = null;
        try
        {
            reference = referencePath is null ? null : OpenChecked(referencePath, settings);
            var (kind, output) = Classify(model.Session, modelPath);
            if (reference is not null)
            {
                var (referenceKind, _) = Classify(reference.Session, referencePath!);
                if (referenceKind != kind || !reference.Session.OutputMetadata.ContainsKey(output))
                    throw new OnnxQuantException(referencePath, $"is not comparable with {modelPath}: it has no {(kind == ModelKind.CausalLm ? "logits" : "hidden-state")} output '{output}'", ExitCode.BadInput);
            }
            return new ModelPair(model, reference, kind, new EvalSession(model.Session, output, modelPath, stage),
                reference is null ? null : new EvalSession(reference.Session, output, referencePath!, stage));
        }
        catch
        {
            reference?.Dispose();
            model.Dispose();
            throw;
        }
    }

    /// <summary>Causal LM when an output is named like logits; else an encoder with a [batch, sequence, hidden] output.</summary>
    private static (ModelKind Kind, string Output) Classify(InferenceSession session, string label)
    {
        var outputs = session.OutputMetadata;
        var logits = outputs.Keys.FirstOrDefault(n => n.Contains("logits", StringComparison.OrdinalIgnoreCase));
        if (logits is not null)
            return (ModelKind.CausalLm, logits);
        var hidden = outputs.FirstOrDefault(kv => kv.Value.IsTensor && kv.Value.Dimensions.Length == 3);
        if (hidden.Key is not null)
            return (ModelKind.Encoder, hidden.Key);
        throw new OnnxQuantException(label, "has neither a logits output nor a [batch, sequence, hidden] output, so there is nothing to verify on text", ExitCode.Unsupported);
    }

    private static OpenedSession OpenChecked(string path, SessionSettings settings)
    {
        // The loader's checks first (protobuf, external data locations and lengths, types and shapes of the linears):
        // ONNX Runtime would read an absolute or '..' location without a word, and its own errors are terse.
        using (var checkedModel = ModelFile.Load(path))
            ModelChecks.EnsureComputable(checkedModel);
        string folder = Path.GetDirectoryName(Path.GetFullPath(path)) ?? ".";
        return SessionFactory.Open(File.ReadAllBytes(path), settings, folder, path);
    }

    public void Dispose()
    {
        _reference?.Dispose();
        _model.Dispose();
    }
}
