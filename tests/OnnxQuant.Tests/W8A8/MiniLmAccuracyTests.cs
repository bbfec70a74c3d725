using System.Text.Json;
using OnnxQuant.Cli;
using OnnxQuant.Tests.Support;
using Xunit.Abstractions;

namespace OnnxQuant.Tests.W8A8;

/// <summary>
/// The W8A8 acceptance bar on the real MiniLM (mean-pooled sentence embeddings, calibrated on Emma, measured on 256
/// held-out Persuasion sentences): `onnxquant smooth` with default options reaches a mean cosine of at least 0.997 to
/// FP32, and --format dynamic at least 0.998.
/// </summary>
public class MiniLmAccuracyTests(ITestOutputHelper output)
{
    [ArtifactFact(Artifact.MiniLm)]
    public void DefaultInt8AndDynamicReachTheTargetCosines()
    {
        string model = RequiredArtifact.MiniLmModel;
        using var folder = new TempFolder();
        string stats = folder.File("minilm.calib");
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        Assert.True(CliApp.Run(["calibrate", model, "-o", stats, "--json"], stdout, stderr) == 0, stderr.ToString());

        double Cosine(params string[] extra)
        {
            var o = new StringWriter();
            var e = new StringWriter();
            int code = CliApp.Run(["smooth", model, "--stats", stats, "-o", folder.File("out.onnx"), "--json", .. extra], o, e);
            Assert.True(code == 0, e.ToString());
            using var json = JsonDocument.Parse(o.ToString());
            double cosine = json.RootElement.GetProperty("verification").GetProperty("mean_cosine").GetDouble();
            output.WriteLine($"smooth {string.Join(' ', extra)}: mean cosine {cosine:F5}");
            return cosine;
        }

        Assert.True(Cosine() >= 0.997);
        Assert.True(Cosine("--format", "dynamic") >= 0.998);
    }
}
