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

    private ModelPair(OpenedSession model, OpenedSession? reference, ModelTask kind, EvalSession session, EvalSession? referenceSession)
    {
        (_model, _reference, Kind, Model, Reference) = (model, reference, kind, session, referenceSession);
    }

    public ModelTask Kind { get; }

    public EvalSession Model { get; }

    /// <summary>Null when only the model is measured.</summary>
    public EvalSession? Reference { get; }

    public string Output => Model.Output;

    public string Device => _model.Device;

    public string? Notice => _model.Notice;

    /// <summary>
    /// Opens both; the model must have the reference's measured output. The task is read from the reference's graph when
    /// there is one (the float original: a quantized head can hide the vocabulary width), else the model's, unless
    /// <paramref name="task"/> forces it (--task).
    /// </summary>
    public static ModelPair Open(string modelPath, string? referencePath, SessionSettings settings, RunStage stage, ModelTask? task = null)
    {
        var (model, modelVerdict) = OpenChecked(modelPath, settings, task);
        OpenedSession? reference = null;
        try
        {
            TaskVerdict? referenceVerdict = null;
            if (referencePath is not null)
                (reference, referenceVerdict) = OpenChecked(referencePath, settings, task);
            var verdict = referenceVerdict ?? modelVerdict;
            var (kind, output) = (verdict.Task, verdict.Output ?? throw NothingToMeasure(referencePath ?? modelPath, verdict));
            if (!model.Session.OutputMetadata.ContainsKey(output))
                throw new OnnxQuantException(modelPath, $"is not comparable with {referencePath}: it has no {(kind == ModelTask.CausalLm ? "logits" : "hidden-state")} output '{output}'", ExitCode.BadInput);
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

    private static OnnxQuantException NothingToMeasure(string label, TaskVerdict verdict) => new(label,
        $"has neither an output over the vocabulary nor a [batch, sequence, hidden] output ({verdict.Evidence}), so there is nothing to measure on text", ExitCode.Unsupported);

    private static (OpenedSession Session, TaskVerdict Verdict) OpenChecked(string path, SessionSettings settings, ModelTask? task)
    {
        // The loader's checks first (protobuf, external data locations and lengths, types and shapes of the linears):
        // ONNX Runtime would read an absolute or '..' location without a word, and its own errors are terse.
        TaskVerdict verdict;
        using (var checkedModel = ModelFile.Load(path))
        {
            ModelChecks.EnsureComputable(checkedModel);
            verdict = ModelTaskDetection.Detect(checkedModel.Graph, task);
        }
        string folder = Path.GetDirectoryName(Path.GetFullPath(path)) ?? ".";
        return (SessionFactory.Open(File.ReadAllBytes(path), settings, folder, path), verdict);
    }

    public void Dispose()
    {
        _reference?.Dispose();
        _model.Dispose();
    }
}
