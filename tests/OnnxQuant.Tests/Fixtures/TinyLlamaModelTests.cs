using OnnxQuant.Fixtures;
using OnnxQuant.Tests.Support;

namespace OnnxQuant.Tests.Fixtures;

/// <summary>The committed models/tiny-llama model is what its README's command makes, and the README names its outliers.</summary>
public class TinyLlamaModelTests
{
    private static readonly string Folder = Path.Combine(RepositoryRoot(), "models", "tiny-llama");

    [Fact]
    public void Committed_model_is_exactly_what_the_regeneration_command_writes()
    {
        string output = Path.Combine(Path.GetTempPath(), $"tiny-llama-{Guid.NewGuid():N}.onnx");
        try
        {
            var main = typeof(FixtureModels).Assembly.EntryPoint!;
            var exit = main.Invoke(null, new object[] { new[] { "tiny-llama", output } });
            Assert.Equal(0, exit);
            Assert.False(File.Exists(output + ".data"), "the README model is one self-contained file");
            byte[] committed = File.ReadAllBytes(Path.Combine(Folder, "model.onnx"));
            Assert.InRange(committed.Length, 1_000_000, 6_000_000);
            Assert.True(committed.AsSpan().SequenceEqual(File.ReadAllBytes(output)), "models/tiny-llama/model.onnx differs from a fresh build");
        }
        finally
        {
            File.Delete(output);
        }
    }

    [Fact]
    public void Readme_names_the_outlier_channels_and_activations_and_the_model_runs()
    {
        var description = FixtureModels.Describe(FixtureOptions.TinyLlama);
        string readme = File.ReadAllText(Path.Combine(Folder, "README.md"));
        var c = description.OutlierChannels;
        Assert.Equal(3, c.Count);
        Assert.Contains($"**{c[0]}, {c[1]} and {c[2]}**", readme);
        foreach (var site in description.Sites)
            Assert.Contains($"`{site.Activation}`", readme);

        var logits = OrtRunner.RunOnce(Path.Combine(Folder, "model.onnx"), new Dictionary<string, OrtFeed>
        {
            ["input_ids"] = OrtFeed.Int64(new long[] { 1, 500, 4095, 7 }, 1, 4),
            ["attention_mask"] = FixtureFeeds.Ones(1, 4),
        })["logits"];
        Assert.Equal(new long[] { 1, 4, 4096 }, logits.Shape);
        Assert.All(logits.Values, v => Assert.True(float.IsFinite(v)));
    }

    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "OnnxQuant.sln")))
                return dir.FullName;
        throw new InvalidOperationException($"no OnnxQuant.sln above {AppContext.BaseDirectory}");
    }
}
