# A golden Ubuntu image for a real OUTSCALE account: the credentials come
# from OSC_ACCESS_KEY/OSC_SECRET_KEY/OSC_REGION or ~/.osc/config.json. The
# same build as outscale-bsu.json, which plans byte for byte the same.

packer {
  required_plugins {
    outscale = {
      version = "~> 1"
      source  = "github.com/outscale/outscale"
    }
  }
}

source "outscale-bsu" "golden" {
  vm_type = "tinav6.c2r4p2"
  source_omi_filter {
    filters = {
      image-name = "Ubuntu-22.04-*"
    }
    owners      = ["Outscale"]
    most_recent = true
  }
  communicator = "none"
  # Packer's {{timestamp}}: every apply builds a new OMI.
  omi_name        = "golden-ubuntu-{{timestamp}}"
  omi_description = "Golden image from {{ .SourceOMIName }} in {{ .BuildRegion }}"
  omi_account_ids = []
  tags = {
    Name     = "golden-ubuntu"
    built-by = "osci"
  }
}

build {
  sources = ["source.outscale-bsu.golden"]
}
