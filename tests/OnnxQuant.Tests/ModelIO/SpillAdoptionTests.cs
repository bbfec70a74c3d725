using Onnx;
using OnnxQuant.IO;
using OnnxQuant.IR;

namespace OnnxQuant.Tests.ModelIO;

/// <summary>
/// The save makes the spill file the output's data file when every byte in it is a kept tensor (no copy of the
/// rewritten weights) and copies otherwise; on a file system without nameless files, the copy's layout is checked.
/// </summary>
public class SpillAdoptionTests
{
    private const int Mib = 1 << 20;

    [Fact]
    public void A_spill_of_only_kept_tensors_becomes_the_data_file_in_place()
    {
        using var dir = new TempFolder();
        using var spill = new SpillFile(dir.Path, mayBecomeOutput: true);
        using var model = ModelWith(spill, out var values);
        bool adopts = NamelessFiles(dir.Path);
        Assert.Equal(adopts, spill.CanBecomeNamed);

        ModelFile.Save(model, dir.File("out.onnx"));

        var offsets = Offsets(dir.File("out.onnx"));
        if (adopts)
        {
            // In place: the spilled tensors keep the offsets the spill gave them (0, then the next 4 KiB boundary), and
            // the in-memory tensor, first in the graph, comes after them; a copy would have put it at 0.
            Assert.Equal(0, offsets["big"]);
            Assert.Equal(AlignUp(2 * Mib + 12), offsets["big2"]);
            Assert.Equal(AlignUp(offsets["big2"] + 3 * Mib), offsets["mid"]);
            Assert.Equal(offsets["mid"] + 8192, new FileInfo(dir.File("out.onnx.data")).Length);
            Assert.False(spill.CanBecomeNamed);
            Assert.Throws<InvalidOperationException>(() => spill.Write(Tensor.FromFloats("late", new float[Mib], [Mib])));
        }
        else
        {
            // Copied in graph order, as before nameless files.
            Assert.Equal(0, offsets["mid"]);
            Assert.Equal(8192, offsets["big"]);
            Assert.Equal(AlignUp(8192 + 2 * Mib + 12), offsets["big2"]);
            Assert.Equal(offsets["big2"] + 3 * Mib, new FileInfo(dir.File("out.onnx.data")).Length);
        }
        Assert.Equal(["out.onnx", "out.onnx.data"], dir.FileNames());

        AssertReadsBack(dir.File("out.onnx"), values);
    }

    [Fact]
    public void The_inputs_unchanged_weights_are_appended_to_the_adopted_spill_byte_for_byte()
    {
        using var dir = new TempFolder();
        var kept = Floats(3 * Mib / 4 + 5, seed: 7);
        SaveInput(dir.File("in.onnx"), kept);
        using var model = ModelFile.Load(dir.File("in.onnx"));
        Assert.True(model.Graph.GetInitializer("kept")!.IsMapped);
        using var spill = new SpillFile(dir.Path, mayBecomeOutput: true);
        model.Graph.Spill = spill;
        var rewritten = Floats(2 * Mib / 4 + 3, seed: 8);
        model.Graph.SetInitializer(Tensor.FromFloats("rewritten", rewritten, [rewritten.Length]));

        ModelFile.Save(model, dir.File("out.onnx"));

        var offsets = Offsets(dir.File("out.onnx"));
        if (NamelessFiles(dir.Path))
        {
            Assert.Equal(0, offsets["rewritten"]);
            Assert.Equal(AlignUp(2 * Mib + 12), offsets["kept"]);
            Assert.Equal(offsets["kept"] + kept.Length * 4L, new FileInfo(dir.File("out.onnx.data")).Length);
        }
        else
        {
            Assert.Equal(0, offsets["kept"]);
            Assert.Equal(AlignUp(kept.Length * 4L), offsets["rewritten"]);
        }
        using var back = ModelFile.Load(dir.File("out.onnx"));
        Assert.Equal(kept, back.Graph.GetInitializer("kept")!.ToFloats());
        Assert.Equal(rewritten, back.Graph.GetInitializer("rewritten")!.ToFloats());
    }

    [Fact]
    public void A_precopied_input_weight_stays_where_it_was_copied_and_replacing_it_sends_the_save_to_copy()
    {
        using var dir = new TempFolder();
        var kept = Floats(3 * Mib / 4 + 5, seed: 11);
        SaveInput(dir.File("in.onnx"), kept);
        var rewritten = Floats(2 * Mib / 4 + 3, seed: 12);

        // Kept: the copy made before the rewrite is where the save puts it; nothing is appended for it.
        using (var model = ModelFile.Load(dir.File("in.onnx")))
        using (var spill = new SpillFile(dir.Path, mayBecomeOutput: true))
        {
            model.Graph.Spill = spill;
            var at = model.Graph.GetInitializer("kept")!.MappedLocation!.Value;
            bool precopied = spill.TryPrecopy(at.File, at.Offset, kept.Length * 4L);
            Assert.Equal(NamelessFiles(dir.Path) && spill.WritesDirect, precopied);
            model.Graph.SetInitializer(Tensor.FromFloats("rewritten", rewritten, [rewritten.Length]));
            ModelFile.Save(model, dir.File("out.onnx"));
            var offsets = Offsets(dir.File("out.onnx"));
            if (precopied)
            {
                Assert.Equal(0, offsets["kept"]);
                Assert.Equal(AlignUp(kept.Length * 4L), offsets["rewritten"]);
                Assert.Equal(offsets["rewritten"] + rewritten.Length * 4L, new FileInfo(dir.File("out.onnx.data")).Length);
            }
            AssertReadsBack(dir.File("out.onnx"), new() { ["kept"] = kept, ["rewritten"] = rewritten });
        }

        // Replaced after all: the copy is dead bytes, so the spill is not adopted and the save writes the new values.
        using (var model = ModelFile.Load(dir.File("in.onnx")))
        using (var spill = new SpillFile(dir.Path, mayBecomeOutput: true))
        {
            model.Graph.Spill = spill;
            var at = model.Graph.GetInitializer("kept")!.MappedLocation!.Value;
            bool precopied = spill.TryPrecopy(at.File, at.Offset, kept.Length * 4L);
            var replacement = Floats(kept.Length, seed: 13);
            model.Graph.SetInitializer(Tensor.FromFloats("kept", replacement, [replacement.Length]));
            ModelFile.Save(model, dir.File("replaced.onnx"));
            if (precopied)
                Assert.True(spill.CanBecomeNamed, "a spill with a dead precopy was adopted");
            AssertReadsBack(dir.File("replaced.onnx"), new() { ["kept"] = replacement });
            Assert.Equal(AlignUp(replacement.Length * 4L), AlignUp(new FileInfo(dir.File("replaced.onnx.data")).Length));
        }
    }

    [Fact]
    public void Saving_twice_adopts_once_and_leaves_the_first_output_unchanged()
    {
        using var dir = new TempFolder();
        using var spill = new SpillFile(dir.Path, mayBecomeOutput: true);
        using var model = ModelWith(spill, out var values);
        ModelFile.Save(model, dir.File("a.onnx"));
        var first = File.ReadAllBytes(dir.File("a.onnx.data"));

        ModelFile.Save(model, dir.File("b.onnx"));

        Assert.Equal(first, File.ReadAllBytes(dir.File("a.onnx.data")));
        Assert.Equal(0, Offsets(dir.File("b.onnx"))["mid"]); // copied in graph order
        AssertReadsBack(dir.File("b.onnx"), values);
    }

    [Fact]
    public void A_spill_holding_a_replaced_tensor_is_copied_so_its_dead_bytes_stay_out()
    {
        using var dir = new TempFolder();
        using var spill = new SpillFile(dir.Path, mayBecomeOutput: true);
        using var model = ModelWith(spill, out var values);
        var replaced = Floats(2 * Mib / 4 + 3, seed: 9);
        model.Graph.SetInitializer(Tensor.FromFloats("big", replaced, [replaced.Length]));
        values["big"] = replaced;

        ModelFile.Save(model, dir.File("out.onnx"));

        Assert.Equal(NamelessFiles(dir.Path), spill.CanBecomeNamed); // not adopted: still nameless
        long kept = new FileInfo(dir.File("out.onnx.data")).Length;
        Assert.True(kept < spill.Length, $"data file {kept} bytes, spill {spill.Length}: the replaced tensor's bytes were kept");
        AssertReadsBack(dir.File("out.onnx"), values);
    }

    // An input with external data, one weight "kept" beside the MatMul's: loaded back, its bytes are mapped.
    private static void SaveInput(string path, float[] kept)
    {
        using var source = OnnxModel.FromProto(TinyModels.MatMul(TensorProtoWriter.Inline(Tensor.FromFloats("W", new float[16], [4, 4])), 4, 4));
        source.Graph.SetInitializer(Tensor.FromFloats("kept", kept, [kept.Length]));
        ModelFile.Save(source, path);
    }

    private static OnnxModel ModelWith(SpillFile spill, out Dictionary<string, float[]> values)
    {
        var model = OnnxModel.FromProto(TinyModels.MatMul(TensorProtoWriter.Inline(Tensor.FromFloats("W", new float[16], [4, 4])), 4, 4));
        values = new()
        {
            ["mid"] = Floats(2048, seed: 3),      // 8 KiB: external, but under the spill threshold
            ["big"] = Floats(2 * Mib / 4 + 3, seed: 4), // 2 MiB + 12 bytes: the next tensor starts at the 4 KiB boundary
            ["big2"] = Floats(3 * Mib / 4, seed: 5),
        };
        model.Graph.SetInitializer(Tensor.FromFloats("mid", values["mid"], [2048]));
        model.Graph.Spill = spill;
        model.Graph.SetInitializer(Tensor.FromFloats("big", values["big"], [values["big"].Length]));
        model.Graph.SetInitializer(Tensor.FromFloats("big2", values["big2"], [values["big2"].Length]));
        Assert.True(model.Graph.GetInitializer("big")!.IsOnDisk);
        Assert.False(model.Graph.GetInitializer("mid")!.IsOnDisk);
        return model;
    }

    // Whether the folder's file system creates nameless files (O_TMPFILE: ext4, xfs, btrfs, tmpfs; overlayfs from Linux
    // 6.6). Where it does not, the save takes the copy path, and the tests check that layout instead.
    private static bool NamelessFiles(string folder)
    {
        using var handle = UnnamedFile.TryCreate(folder);
        return handle is not null;
    }

    private static void AssertReadsBack(string modelPath, Dictionary<string, float[]> values)
    {
        using var back = ModelFile.Load(modelPath);
        foreach (var (name, v) in values)
            Assert.Equal(v, back.Graph.GetInitializer(name)!.ToFloats());
    }

    private static Dictionary<string, long> Offsets(string modelPath)
    {
        var proto = ModelProto.Parser.ParseFrom(File.ReadAllBytes(modelPath));
        return proto.Graph.Initializer.Where(t => t.DataLocation == TensorProto.Types.DataLocation.External)
            .ToDictionary(t => t.Name, t => long.Parse(t.ExternalData.Single(e => e.Key == "offset").Value));
    }

    private static long AlignUp(long n) => (n + SpillFile.Alignment - 1) / SpillFile.Alignment * SpillFile.Alignment;

    private static float[] Floats(int count, int seed)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, count).Select(_ => (float)random.NextDouble()).ToArray();
    }
}
