using OnnxQuant.IO;

namespace OnnxQuant.Cli;

/// <summary>Where a quantizing command writes when its input is an ONNX Runtime GenAI folder (README, "ONNX Runtime GenAI").</summary>
/// <param name="Created">True when this run created the output folder (removed again if the run fails before the save).</param>
public sealed record GenAiOutput(GenAiFolder Input, string OutputFolder, bool Created)
{
    /// <summary>
    /// The model and output paths of a quantizing command: a plain model gets <paramref name="output"/> or the default
    /// file; a GenAI folder (or its decoder) gets a folder, -o or "&lt;folder&gt;-<paramref name="suffix"/>", holding the
    /// decoder under its own name. Called last before the work, as it creates the output folder.
    /// </summary>
    public static (string Model, string Output, GenAiOutput? GenAi) Resolve(string model, string? output, string suffix, Func<string, string> defaultOutput)
    {
        var folder = GenAiFolder.Find(model);
        if (folder is null)
            return (model, output ?? defaultOutput(model), null);
        string outputFolder = output ?? folder.DefaultOutputFolder(suffix);
        bool created = folder.PrepareOutput(outputFolder);
        return (folder.ModelPath, folder.OutputModelPath(outputFolder), new GenAiOutput(folder, outputFolder, created));
    }
}
